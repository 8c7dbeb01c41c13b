using Microsoft.Extensions.Logging;
using static TorchSharp.torch;

namespace Distill.Losses;

/// <summary>
/// ATKD's token-level methods (<c>forward</c>, <c>reverse</c>, <c>jsd</c>, <c>tvd</c>, <c>dkd</c>): pure KD, ATKD's
/// token-level mean returned as sum + count.
/// </summary>
internal sealed class AtkdTokenObjective : IDistillationObjective
{
    private readonly LossesOptions options;
    private readonly ILogger logger;

    internal AtkdTokenObjective(string name, LossesOptions options, ILogger logger)
    {
        if (name is not (ObjectiveNames.AtkdForward or ObjectiveNames.AtkdReverse or ObjectiveNames.AtkdJsd or ObjectiveNames.AtkdTvd or ObjectiveNames.AtkdDkd))
        {
            throw new ArgumentException($"'{name}' is not an ATKD token-level objective.", nameof(name));
        }

        Name = name;
        this.options = options;
        this.logger = logger;
        if (options.Atkd.OfficialCompatibility && name is ObjectiveNames.AtkdJsd or ObjectiveNames.AtkdTvd or ObjectiveNames.AtkdDkd)
        {
            Log.CompatibilityMode(logger, name, name switch
            {
                ObjectiveNames.AtkdJsd => "jsd = 0.9·forward + 0.1·reverse KL",
                ObjectiveNames.AtkdTvd => "tvd averages over the ignored positions",
                _ => "dkd raises as the official call does",
            });
        }
    }

    public string Name { get; }

    public ObjectiveRequirements Requirements => ObjectiveResults.LogitsPair;

    public nn.Module? Module => null;

    public ObjectiveResult Compute(ObjectiveContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var o = options.Atkd;
        if (Name == ObjectiveNames.AtkdDkd && o.OfficialCompatibility)
        {
            throw new NotSupportedException(
                "atkd_dkd with Atkd.OfficialCompatibility = true: the official ATKD code calls dkd_loss with 6 positional arguments for its 8 parameters " +
                "and raises TypeError, so '--kl_method dkd' has no official numbers. Turn OfficialCompatibility off for the intended α·TCKD + β·NCKD.");
        }

        var (student, teacher) = LogitsGuard.Pair(context, options, Name, logger);
        var labels = context.Batch.Labels;
        using var scope = NewDisposeScope();
        var s = LossMath.Scale(student, o.StudentTemperature);
        var t = LossMath.Scale(teacher, o.TeacherTemperature);
        var mask = TokenReduction.ValidMask(labels);
        var count = mask.sum().item<long>();
        ObjectiveResult result;
        switch (Name)
        {
            case ObjectiveNames.AtkdForward:
                result = Sum(ForwardKl.PerToken(s, t), mask, count);
                break;
            case ObjectiveNames.AtkdReverse:
                result = Sum(ReverseKl.PerToken(s, t), mask, count);
                break;
            case ObjectiveNames.AtkdJsd when o.OfficialCompatibility:
                result = Sum(o.JsdForwardRatio * ForwardKl.PerToken(s, t) + (1 - o.JsdForwardRatio) * ReverseKl.PerToken(s, t), mask, count);
                break;
            case ObjectiveNames.AtkdJsd:
                result = Sum(GeneralizedJsd.PerToken(s, t, beta: 0.5), mask, count);
                break;
            case ObjectiveNames.AtkdTvd when o.OfficialCompatibility:
                // Official get_tvd selects the rows where the padding mask is TRUE (the ignored positions) and averages them;
                // as sum + count: the sum over ignored positions and their number (0/0 → NaN when there are none, as official).
                var ignored = mask.logical_not();
                var nIgnored = count == mask.numel() ? 0 : ignored.sum().item<long>();
                var tvdSum = TokenReduction.MaskedSum(TotalVariation.PerToken(s, t), ignored);
                result = ObjectiveResults.Create(nIgnored == 0 ? tvdSum / 0.0 : tvdSum, nIgnored, ("kd", tvdSum));
                break;
            case ObjectiveNames.AtkdTvd:
                result = Sum(TotalVariation.PerToken(s, t), mask, count);
                break;
            default: // AtkdDkd
                var (tckd, nckd) = Dkd.PerToken(s, t, labels);
                var tc = TokenReduction.MaskedSum(tckd, mask);
                var nc = TokenReduction.MaskedSum(nckd, mask);
                result = ObjectiveResults.Create(o.Alpha * tc + o.Beta * nc, count, ("kd", o.Alpha * tc + o.Beta * nc), ("tckd", tc), ("nckd", nc));
                break;
        }

        return DivergenceKdObjective.Move(result);
    }

    private static ObjectiveResult Sum(Tensor perToken, Tensor mask, long count)
    {
        var sum = TokenReduction.MaskedSum(perToken, mask);
        return ObjectiveResults.Create(sum, count, ("kd", sum));
    }
}
