using static TorchSharp.torch;

namespace Distill.Losses;

/// <summary>Total variation distance per token, ½ Σ_v |q_student − p_teacher| (ATKD <c>tvd</c>); in [0, 1].</summary>
public static class TotalVariation
{
    /// <summary>Per-token TVD.</summary>
    /// <param name="studentLogits">[..., V].</param>
    /// <param name="teacherLogits">[..., V].</param>
    /// <param name="studentTemperature">T_s.</param>
    /// <param name="teacherTemperature">T_t.</param>
    /// <returns>[...] float32, unmasked.</returns>
    public static Tensor PerToken(Tensor studentLogits, Tensor teacherLogits, double studentTemperature = 1.0, double teacherTemperature = 1.0)
    {
        ArgumentNullException.ThrowIfNull(studentLogits);
        ArgumentNullException.ThrowIfNull(teacherLogits);
        using var scope = NewDisposeScope();
        var q = LossMath.Scale(studentLogits, studentTemperature).softmax(-1);
        var p = LossMath.Scale(teacherLogits, teacherTemperature).softmax(-1);
        return (q - p).abs().sum(-1).Mul(0.5).MoveToOuterDisposeScope();
    }
}
