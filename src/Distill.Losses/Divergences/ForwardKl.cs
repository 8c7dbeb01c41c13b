using static TorchSharp.torch;

namespace Distill.Losses;

/// <summary>Forward KL, <c>KL(p_teacher || q_student)</c>, per token (DSKD <c>forward_kl</c>, ATKD <c>forward</c>).</summary>
public static class ForwardKl
{
    /// <summary>Σ_v p·(log p − log q) with p = softmax(teacher/T), q = softmax(student/T), in float32.</summary>
    /// <param name="studentLogits">[..., V]; float32 or bfloat16.</param>
    /// <param name="teacherLogits">[..., V]; same shape.</param>
    /// <param name="temperature">T, applied to both (no T² factor, as DSKD and ATKD).</param>
    /// <returns>[...] float32, unmasked. Vocabulary entries where either logit is ±inf contribute 0 (DSKD's inf mask).</returns>
    public static Tensor PerToken(Tensor studentLogits, Tensor teacherLogits, double temperature = 1.0) =>
        PerToken(studentLogits, teacherLogits, temperature, temperature);

    /// <summary>As <see cref="PerToken(Tensor, Tensor, double)"/> with separate student and teacher temperatures (ATKD's T_s, T_t).</summary>
    public static Tensor PerToken(Tensor studentLogits, Tensor teacherLogits, double studentTemperature, double teacherTemperature)
    {
        ArgumentNullException.ThrowIfNull(studentLogits);
        ArgumentNullException.ThrowIfNull(teacherLogits);
        using var scope = NewDisposeScope();
        var s = LossMath.Scale(studentLogits, studentTemperature);
        var t = LossMath.Scale(teacherLogits, teacherTemperature);
        var inf = LossMath.InfMask(s, t);
        var logQ = LossMath.Sanitize(s.log_softmax(-1), inf);
        var logP = LossMath.Sanitize(t.log_softmax(-1), inf);
        // kl_div(input = log q, target = log p, log_target) = p·(log p − log q): KL(teacher || student).
        var kl = nn.functional.kl_div(logQ, logP, log_target: true, reduction: nn.Reduction.None);
        return kl.masked_fill(inf, TorchScalars.Constant(0.0)).sum(-1).MoveToOuterDisposeScope();
    }
}
