using Microsoft.Extensions.Logging;
using static TorchSharp.torch;

namespace Distill.Losses;

/// <summary>GKD's generalised JSD(β) as TRL computes it (pure KD, mean over scored tokens → sum + count).</summary>
internal sealed class GkdJsdObjective(LossesOptions options, ILogger logger) : IDistillationObjective
{
    public string Name => ObjectiveNames.GkdJsd;

    public ObjectiveRequirements Requirements => ObjectiveResults.LogitsPair;

    public nn.Module? Module => null;

    public ObjectiveResult Compute(ObjectiveContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var (student, teacher) = LogitsGuard.Pair(context, options, Name, logger);
        using var scope = NewDisposeScope();
        var mask = TokenReduction.ValidMask(context.Batch.Labels);
        var sum = TokenReduction.MaskedSum(GeneralizedJsd.PerToken(student, teacher, options.Gkd.Beta, options.Gkd.Temperature), mask);
        return DivergenceKdObjective.Move(ObjectiveResults.Create(sum, mask.sum().item<long>(), ("kd", sum)));
    }
}
