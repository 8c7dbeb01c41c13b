using static TorchSharp.torch;

namespace Distill.Losses;

/// <summary>
/// Adaptive KL (AKL, Wu et al. 2024) as DSKD's <c>adaptive_kl</c>: w_head·FKL + w_tail·RKL with weights from the gap
/// between teacher and student probabilities on the teacher's head and tail.
/// </summary>
/// <remarks>
/// Teacher probabilities are sorted ascending; the tail is the prefix whose cumulative teacher mass is ≤ α; the gaps
/// |p − q| summed over head and tail give g_head and g_tail (detached); AKL = g_head/(g_head+g_tail)·FKL +
/// g_tail/(g_head+g_tail)·RKL. DSKD divides 0/0 (NaN) when p = q exactly; here the weights fall back to ½, ½
/// (FKL = RKL = 0 there, so the value is 0).
/// </remarks>
public static class AdaptiveKl
{
    /// <summary>Per-token AKL.</summary>
    /// <param name="studentLogits">[..., V].</param>
    /// <param name="teacherLogits">[..., V].</param>
    /// <param name="alpha">Tail mass threshold α (DSKD <c>adaptive_kl_alpha</c>, default 0.5).</param>
    /// <param name="temperature">T, applied to both.</param>
    /// <returns>[...] float32, unmasked.</returns>
    public static Tensor PerToken(Tensor studentLogits, Tensor teacherLogits, double alpha = 0.5, double temperature = 1.0)
    {
        ArgumentNullException.ThrowIfNull(studentLogits);
        ArgumentNullException.ThrowIfNull(teacherLogits);
        using var scope = NewDisposeScope();
        var (wHead, wTail) = Weights(studentLogits, teacherLogits, alpha, temperature);
        var fkl = ForwardKl.PerToken(studentLogits, teacherLogits, temperature);
        var rkl = ReverseKl.PerToken(studentLogits, teacherLogits, temperature);
        return (wHead * fkl).Add(wTail * rkl).MoveToOuterDisposeScope();
    }

    /// <summary>The detached head and tail weights of AKL, each [...]: g_head/(g_head+g_tail) and g_tail/(g_head+g_tail) (½, ½ where p = q).</summary>
    internal static (Tensor Head, Tensor Tail) Weights(Tensor studentLogits, Tensor teacherLogits, double alpha, double temperature)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var q = LossMath.Scale(studentLogits, temperature).softmax(-1);
        var p = LossMath.Scale(teacherLogits, temperature).softmax(-1);
        var (sortedP, idx) = p.sort(-1);                                   // ascending, as DSKD
        var sortedQ = q.gather(-1, idx);
        var gap = (sortedP - sortedQ).abs();
        var tail = sortedP.cumsum(-1).Le(alpha).to(sortedP.dtype);        // smallest tokens with cumulative mass ≤ α
        var gHead = (gap * tail.RSub(1)).sum(-1);
        var gTail = (gap * tail).sum(-1);
        var total = gHead.Add(gTail);
        var positive = total.gt(TorchScalars.Constant(0));
        var safeTotal = total.masked_fill(positive.logical_not(), TorchScalars.Constant(1.0));
        var head = where(positive, gHead / safeTotal, full_like(total, TorchScalars.Constant(0.5)));
        var tailWeight = where(positive, gTail / safeTotal, full_like(total, TorchScalars.Constant(0.5)));
        return (head.MoveToOuterDisposeScope(), tailWeight.MoveToOuterDisposeScope());
    }
}
