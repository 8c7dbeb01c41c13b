using Microsoft.Extensions.Logging;
using static TorchSharp.torch;

namespace Distill.Losses;

/// <summary>
/// ATKD adaptive teaching (<c>--kl_method atkd</c>). Its easy/hard groups are normalised by their own counts, so the loss is
/// not per-token decomposable: this objective returns <c>LossSum = L·N</c> and <c>Normalizer = N</c> (N scored tokens), which
/// the trainer's division turns back into ATKD's L for a one-micro-batch window.
/// </summary>
internal sealed class AtkdObjective : IDistillationObjective
{
    private readonly LossesOptions options;
    private readonly ILogger logger;

    internal AtkdObjective(LossesOptions options, ILogger logger)
    {
        this.options = options;
        this.logger = logger;
        if (options.Atkd.OfficialCompatibility)
        {
            Log.CompatibilityMode(logger, Name, "an empty easy/hard group makes the loss NaN");
        }
    }

    public string Name => ObjectiveNames.Atkd;

    public ObjectiveRequirements Requirements => ObjectiveResults.LogitsPair;

    public nn.Module? Module => null;

    public ObjectiveResult Compute(ObjectiveContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var o = options.Atkd;
        var (student, teacher) = LogitsGuard.Pair(context, options, Name, logger);
        using var scope = NewDisposeScope();
        var r = Atkd.Compute(student, teacher, context.Batch.Labels, o.Alpha, o.StudentTemperature, o.TeacherTemperature,
            o.Setting == AtkdSetting.Reverse, emptyGroupIsNaN: o.OfficialCompatibility);
        if (r.TokenCount > 0 && (r.EasyCount == 0 || r.HardCount == 0))
        {
            Log.AtkdEmptyGroup(logger, Name, r.EasyCount == 0 ? "easy" : "hard", r.EasyCount, r.HardCount);
        }

        var result = ObjectiveResults.Create(r.Loss * r.TokenCount, r.TokenCount, ("kd", r.Loss),
            ("easy_tokens", tensor((float)r.EasyCount)), ("hard_tokens", tensor((float)r.HardCount)));
        return DivergenceKdObjective.Move(result);
    }
}
