using static TorchSharp.torch;

namespace Distill.Losses;

/// <summary>Jensen–Shannon divergence as DSKD's <c>js_divergence</c>: ½[KL(p||m) + KL(q||m)], m = (p+q)/2, with 1e-9 inside every log.</summary>
public static class JsDivergence
{
    /// <summary>The epsilon DSKD adds inside each log.</summary>
    public const double Epsilon = 1e-9;

    /// <summary>Per-token JS divergence.</summary>
    /// <param name="studentLogits">[..., V].</param>
    /// <param name="teacherLogits">[..., V].</param>
    /// <param name="temperature">T, applied to both.</param>
    /// <returns>[...] float32, unmasked; symmetric in its two arguments.</returns>
    public static Tensor PerToken(Tensor studentLogits, Tensor teacherLogits, double temperature = 1.0)
    {
        ArgumentNullException.ThrowIfNull(studentLogits);
        ArgumentNullException.ThrowIfNull(teacherLogits);
        using var scope = NewDisposeScope();
        var s = LossMath.Scale(studentLogits, temperature);
        var t = LossMath.Scale(teacherLogits, temperature);
        var inf = LossMath.InfMask(s, t);
        var q = s.softmax(-1);
        var p = t.softmax(-1);
        var m = p.Add(q).Div(2);
        var logM = m.Add(Epsilon).log();
        var term = (p * (p.Add(Epsilon).log() - logM)).Add(q * (q.Add(Epsilon).log() - logM)).Div(2);
        return term.masked_fill(inf, TorchScalars.Constant(0.0)).sum(-1).MoveToOuterDisposeScope();
    }
}
