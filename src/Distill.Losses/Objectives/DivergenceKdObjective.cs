using Microsoft.Extensions.Logging;
using static TorchSharp.torch;

namespace Distill.Losses;

/// <summary>
/// The DSKD <c>various_divergence</c> criterion: sum = (1 − α)·CE_sum + α·KD_sum over scored tokens, KD being one of the
/// DSKD divergences at temperature T (no T²); the count is the number of scored tokens (DSKD's token-level normalisation).
/// </summary>
internal sealed class DivergenceKdObjective : IDistillationObjective
{
    private readonly LossesOptions options;
    private readonly ILogger logger;
    private readonly Func<Tensor, Tensor, DivergenceKdOptions, Tensor> divergence;

    internal DivergenceKdObjective(string name, LossesOptions options, ILogger logger)
    {
        Name = name;
        this.options = options;
        this.logger = logger;
        divergence = PerToken(name);
    }

    public string Name { get; }

    public ObjectiveRequirements Requirements => ObjectiveResults.LogitsPair;

    public nn.Module? Module => null;

    /// <summary>The per-token divergence of a DSKD objective name, [B, T] from [B, T, V] logits.</summary>
    internal static Func<Tensor, Tensor, DivergenceKdOptions, Tensor> PerToken(string name) => name switch
    {
        ObjectiveNames.ForwardKl => (s, t, o) => ForwardKl.PerToken(s, t, o.Temperature),
        ObjectiveNames.ReverseKl => (s, t, o) => ReverseKl.PerToken(s, t, o.Temperature),
        ObjectiveNames.JsDivergence => (s, t, o) => JsDivergence.PerToken(s, t, o.Temperature),
        ObjectiveNames.SkewedForwardKl => (s, t, o) => SkewKl.Forward(s, t, o.SkewLambda, o.Temperature),
        ObjectiveNames.SkewedReverseKl => (s, t, o) => SkewKl.Reverse(s, t, o.SkewLambda, o.Temperature),
        ObjectiveNames.AdaptiveKl => (s, t, o) => AdaptiveKl.PerToken(s, t, o.AdaptiveKlAlpha, o.Temperature),
        _ => throw new ArgumentException($"'{name}' is not a DSKD divergence objective.", nameof(name)),
    };

    public ObjectiveResult Compute(ObjectiveContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var (student, teacher) = LogitsGuard.Pair(context, options, Name, logger);
        var labels = context.Batch.Labels;
        using var scope = NewDisposeScope();
        var mask = TokenReduction.ValidMask(labels);
        var ce = TokenReduction.MaskedSum(CrossEntropy.PerToken(student, labels), mask);
        var kd = TokenReduction.MaskedSum(divergence(student, teacher, options.Divergence), mask);
        var alpha = options.Divergence.KdRate;
        var loss = (1 - alpha) * ce + alpha * kd;
        var count = mask.sum().item<long>();
        return Move(ObjectiveResults.Create(loss, count, ("ce", ce), ("kd", kd)));
    }

    /// <summary>Moves a result's tensors out of the current dispose scope.</summary>
    internal static ObjectiveResult Move(ObjectiveResult result)
    {
        result.LossSum.MoveToOuterDisposeScope();
        result.Normalizer.MoveToOuterDisposeScope();
        result.ScoredTokens.MoveToOuterDisposeScope();
        foreach (var value in result.Metrics.Values)
        {
            value.MoveToOuterDisposeScope();
        }

        return result;
    }
}
