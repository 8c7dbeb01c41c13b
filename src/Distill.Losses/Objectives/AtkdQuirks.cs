using static TorchSharp.torch;

namespace Distill.Losses;

/// <summary>
/// The ATKD family's deviations from the intended losses, written once for the full-logits objectives and their chunked
/// variants (reference: <c>distill_trainer.py</c> of the official ATKD code). Each is active only with
/// <see cref="AtkdOptions.OfficialCompatibility"/>, except the pad-label mask, which has its own option.
/// </summary>
internal static class AtkdQuirks
{
    /// <summary>What an ATKD objective reproduces in official-compatibility mode (logged once when created), or <see langword="null"/>.</summary>
    internal static string? Describe(string name, LossesOptions options)
    {
        if (!options.Atkd.OfficialCompatibility)
        {
            return null;
        }

        return name switch
        {
            ObjectiveNames.AtkdJsd => "jsd = 0.9·forward + 0.1·reverse KL",
            ObjectiveNames.AtkdTvd => "tvd averages over the ignored positions",
            ObjectiveNames.AtkdDkd => "dkd raises as the official call does",
            ObjectiveNames.Atkd => "an empty easy/hard group makes the loss NaN",
            _ => null,
        };
    }

    /// <summary>Official <c>--kl_method dkd</c> calls <c>dkd_loss</c> with 6 positional arguments for 8 parameters and raises TypeError.</summary>
    internal static void ThrowIfOfficialDkd(LossesOptions options)
    {
        if (options.Atkd.OfficialCompatibility)
        {
            throw new NotSupportedException(
                "atkd_dkd with Atkd.OfficialCompatibility = true: the official ATKD code calls dkd_loss with 6 positional arguments for its 8 parameters " +
                "and raises TypeError, so '--kl_method dkd' has no official numbers. Turn OfficialCompatibility off for the intended α·TCKD + β·NCKD.");
        }
    }

    /// <summary>Official <c>get_tvd</c> selects the rows where the padding mask is TRUE (the ignored positions) and averages them.</summary>
    internal static bool TvdScoresIgnored(LossesOptions options) => options.Atkd.OfficialCompatibility;

    /// <summary>The official <c>jsd</c> is <c>r·FKL + (1 − r)·RKL</c> (r = <see cref="AtkdOptions.JsdForwardRatio"/>), the intended one a true JSD.</summary>
    internal static TokenLoss Jsd(LossesOptions options)
    {
        var a = options.Atkd;
        return a.OfficialCompatibility
            ? Scaled(a, (s, t) => ForwardKl.PerToken(s, t).Mul(a.JsdForwardRatio).Add(ReverseKl.PerToken(s, t).Mul(1 - a.JsdForwardRatio)))
            : Scaled(a, (s, t) => GeneralizedJsd.PerToken(s, t, beta: 0.5));
    }

    /// <summary>
    /// ATKD's output mask is <c>(labels == −100) | (labels == pad_token_id)</c> (for OPT pad = EOS, so every EOS label is
    /// dropped too); with <see cref="AtkdOptions.MaskPadTokenId"/> set, labels equal to it become −100.
    /// </summary>
    internal static Tensor Labels(LossesOptions options, Tensor labels) =>
        options.Atkd.MaskPadTokenId is { } pad ? labels.masked_fill(labels.Eq(pad), TorchScalars.Constant(DistillationBatch.IgnoreIndex)) : labels;

    /// <summary>A per-token loss over logits scaled by ATKD's student and teacher temperatures.</summary>
    internal static TokenLoss Scaled(AtkdOptions a, Func<Tensor, Tensor, Tensor> perToken) =>
        (s, t, _) => perToken(LossMath.Scale(s, a.StudentTemperature), LossMath.Scale(t!, a.TeacherTemperature));
}
