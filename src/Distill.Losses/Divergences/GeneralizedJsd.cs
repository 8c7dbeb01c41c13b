using static TorchSharp.torch;

namespace Distill.Losses;

/// <summary>
/// Generalised Jensen–Shannon divergence JSD(β) as TRL's GKD trainer:
/// β·KL(p || m) + (1−β)·KL(q || m), m = β·p + (1−β)·q; β = 0 is forward KL(p || q), β = 1 reverse KL(q || p).
/// </summary>
/// <remarks>Eq. (1) of Agarwal et al., arXiv:2306.13649; TRL <c>GKDTrainer.generalized_jsd_loss</c>.</remarks>
public static class GeneralizedJsd
{
    /// <summary>Per-token JSD(β).</summary>
    /// <param name="studentLogits">[..., V].</param>
    /// <param name="teacherLogits">[..., V].</param>
    /// <param name="beta">β ∈ [0, 1].</param>
    /// <param name="temperature">T, applied to both.</param>
    /// <returns>[...] float32, unmasked.</returns>
    public static Tensor PerToken(Tensor studentLogits, Tensor teacherLogits, double beta = 0.5, double temperature = 1.0)
    {
        ArgumentNullException.ThrowIfNull(studentLogits);
        ArgumentNullException.ThrowIfNull(teacherLogits);
        if (beta <= 0)
        {
            return ForwardKl.PerToken(studentLogits, teacherLogits, temperature);
        }

        if (beta >= 1)
        {
            return ReverseKl.PerToken(studentLogits, teacherLogits, temperature);
        }

        using var scope = NewDisposeScope();
        var s = LossMath.Scale(studentLogits, temperature);
        var t = LossMath.Scale(teacherLogits, temperature);
        var inf = LossMath.InfMask(s, t);
        var logQ = LossMath.Sanitize(s.log_softmax(-1), inf);
        var logP = LossMath.Sanitize(t.log_softmax(-1), inf);
        var logM = stack([logQ.Add(Math.Log(1 - beta)), logP.Add(Math.Log(beta))]).logsumexp(0L);
        // kl_div(input = log m, target = log p, log_target) = KL(p || m); likewise KL(q || m). TRL's argument order.
        var klTeacher = nn.functional.kl_div(logM, logP, log_target: true, reduction: nn.Reduction.None);
        var klStudent = nn.functional.kl_div(logM, logQ, log_target: true, reduction: nn.Reduction.None);
        var jsd = klTeacher.Mul(beta).Add(klStudent.Mul(1 - beta));
        return jsd.masked_fill(inf, TorchScalars.Constant(0.0)).sum(-1).MoveToOuterDisposeScope();
    }
}
