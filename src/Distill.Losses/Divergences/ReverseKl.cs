using static TorchSharp.torch;

namespace Distill.Losses;

/// <summary>Reverse KL, <c>KL(q_student || p_teacher)</c>, per token (DSKD <c>reverse_kl</c>, ATKD <c>reverse</c>).</summary>
public static class ReverseKl
{
    /// <summary>Σ_v q·(log q − log p) with q = softmax(student/T), p = softmax(teacher/T), in float32.</summary>
    /// <param name="studentLogits">[..., V]; float32 or bfloat16.</param>
    /// <param name="teacherLogits">[..., V].</param>
    /// <param name="temperature">T, applied to both.</param>
    /// <returns>[...] float32, unmasked; entries with a ±inf logit contribute 0.</returns>
    public static Tensor PerToken(Tensor studentLogits, Tensor teacherLogits, double temperature = 1.0) =>
        PerToken(studentLogits, teacherLogits, temperature, temperature);

    /// <summary>As <see cref="PerToken(Tensor, Tensor, double)"/> with separate student and teacher temperatures.</summary>
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
        // kl_div(input = log p, target = log q, log_target) = q·(log q − log p): KL(student || teacher).
        var kl = nn.functional.kl_div(logP, logQ, log_target: true, reduction: nn.Reduction.None);
        return kl.masked_fill(inf, TorchScalars.Constant(0.0)).sum(-1).MoveToOuterDisposeScope();
    }
}
