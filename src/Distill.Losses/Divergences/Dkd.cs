using static TorchSharp.torch;

namespace Distill.Losses;

/// <summary>
/// Decoupled KD terms (Zhao et al. 2022) as ATKD's <c>dkd_loss</c>: the target-class term TCKD = KL(b_t || b_s) over the
/// binary distribution b = [p(y), Σ_{v≠y} p(v)] and the non-target term NCKD = KL(p̂_t || p̂_s) over the V−1 non-target
/// classes (renormalised), both per token.
/// </summary>
/// <remarks>
/// ATKD does not weight NCKD by the teacher's non-target mass (that line is commented out), so TCKD + NCKD is not the exact
/// forward-KL decomposition. Everything is computed in log space (ATKD takes <c>log</c> of the binary probabilities, which
/// is −inf when p(y) underflows); values agree wherever ATKD's are finite.
/// </remarks>
public static class Dkd
{
    /// <summary>Per-token TCKD and NCKD.</summary>
    /// <param name="studentLogits">[..., V].</param>
    /// <param name="teacherLogits">[..., V].</param>
    /// <param name="labels">[...] int64 target ids aligned with the logits (−100 allowed; those positions get arbitrary finite values and must be masked by the caller).</param>
    /// <param name="studentTemperature">T_s.</param>
    /// <param name="teacherTemperature">T_t.</param>
    /// <returns>TCKD and NCKD, each [...] float32.</returns>
    public static (Tensor Tckd, Tensor Nckd) PerToken(
        Tensor studentLogits, Tensor teacherLogits, Tensor labels, double studentTemperature = 1.0, double teacherTemperature = 1.0)
    {
        ArgumentNullException.ThrowIfNull(studentLogits);
        ArgumentNullException.ThrowIfNull(teacherLogits);
        ArgumentNullException.ThrowIfNull(labels);
        using var scope = NewDisposeScope();
        var s = LossMath.Scale(studentLogits, studentTemperature);
        var t = LossMath.Scale(teacherLogits, teacherTemperature);
        var gt = LossMath.TargetMask(s, labels);                                    // [..., V] one-hot of y
        var logBs = LossMath.LogBinary(s.log_softmax(-1), gt, labels);             // [..., 2]
        var logBt = LossMath.LogBinary(t.log_softmax(-1), gt, labels);
        var tckd = LossMath.KlFromLogs(logBt, logBs);                               // KL(b_t || b_s)
        var logNs = s.masked_fill(gt, TorchScalars.Constant(double.NegativeInfinity)).log_softmax(-1);    // softmax over v ≠ y
        var logNt = t.masked_fill(gt, TorchScalars.Constant(double.NegativeInfinity)).log_softmax(-1);
        var nckd = LossMath.KlFromLogs(logNt, logNs);                               // KL(p̂_t || p̂_s)
        return (tckd.MoveToOuterDisposeScope(), nckd.MoveToOuterDisposeScope());
    }

    /// <summary>The teacher's non-target probability mass Σ_{v≠y} p_t(v) per token (ATKD's uncertainty score).</summary>
    /// <param name="teacherLogits">[..., V].</param>
    /// <param name="labels">[...] int64.</param>
    /// <param name="temperature">T_t.</param>
    /// <returns>[...] float32 in [0, 1].</returns>
    public static Tensor NonTargetMass(Tensor teacherLogits, Tensor labels, double temperature = 1.0)
    {
        ArgumentNullException.ThrowIfNull(teacherLogits);
        ArgumentNullException.ThrowIfNull(labels);
        using var scope = NewDisposeScope();
        var t = LossMath.Scale(teacherLogits, temperature);
        var gt = LossMath.TargetMask(t, labels);
        return t.softmax(-1).masked_fill(gt, TorchScalars.Constant(0.0)).sum(-1).MoveToOuterDisposeScope();
    }
}
