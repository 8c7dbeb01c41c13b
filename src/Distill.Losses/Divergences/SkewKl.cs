using static TorchSharp.torch;

namespace Distill.Losses;

/// <summary>
/// Skew KL divergences (DSKD <c>skewed_forward_kl</c> / <c>skewed_reverse_kl</c>, Ko et al. DistiLLM):
/// SKL = KL(p || λp + (1−λ)q), SRKL = KL(q || (1−λ)p + λq).
/// </summary>
/// <remarks>
/// DSKD takes <c>log(m)</c> of the mixture directly, which is NaN (0·(−inf)) when both probabilities underflow; here
/// log m is a log-sum-exp of the two log-probabilities, equal to DSKD's value wherever DSKD's is finite.
/// </remarks>
public static class SkewKl
{
    /// <summary>Per-token skew forward KL, KL(p || λp + (1−λ)q).</summary>
    /// <param name="studentLogits">[..., V].</param>
    /// <param name="teacherLogits">[..., V].</param>
    /// <param name="lambda">λ ∈ [0, 1] (DSKD <c>skew_lambda</c>, default 0.1).</param>
    /// <param name="temperature">T, applied to both.</param>
    /// <returns>[...] float32, unmasked.</returns>
    public static Tensor Forward(Tensor studentLogits, Tensor teacherLogits, double lambda = 0.1, double temperature = 1.0)
    {
        ArgumentNullException.ThrowIfNull(studentLogits);
        ArgumentNullException.ThrowIfNull(teacherLogits);
        using var scope = NewDisposeScope();
        var (logQ, logP, inf) = LogProbs(studentLogits, teacherLogits, temperature);
        var logM = LogMixture(logP, logQ, lambda);
        return (logP.exp() * (logP - logM)).masked_fill(inf, TorchScalars.Constant(0.0)).sum(-1).MoveToOuterDisposeScope();
    }

    /// <summary>Per-token skew reverse KL, KL(q || (1−λ)p + λq).</summary>
    /// <param name="studentLogits">[..., V].</param>
    /// <param name="teacherLogits">[..., V].</param>
    /// <param name="lambda">λ ∈ [0, 1] (default 0.1).</param>
    /// <param name="temperature">T, applied to both.</param>
    /// <returns>[...] float32, unmasked.</returns>
    public static Tensor Reverse(Tensor studentLogits, Tensor teacherLogits, double lambda = 0.1, double temperature = 1.0)
    {
        ArgumentNullException.ThrowIfNull(studentLogits);
        ArgumentNullException.ThrowIfNull(teacherLogits);
        using var scope = NewDisposeScope();
        var (logQ, logP, inf) = LogProbs(studentLogits, teacherLogits, temperature);
        var logM = LogMixture(logQ, logP, lambda);
        return (logQ.exp() * (logQ - logM)).masked_fill(inf, TorchScalars.Constant(0.0)).sum(-1).MoveToOuterDisposeScope();
    }

    private static (Tensor LogQ, Tensor LogP, Tensor Inf) LogProbs(Tensor studentLogits, Tensor teacherLogits, double temperature)
    {
        var s = LossMath.Scale(studentLogits, temperature);
        var t = LossMath.Scale(teacherLogits, temperature);
        var inf = LossMath.InfMask(s, t);
        return (LossMath.Sanitize(s.log_softmax(-1), inf), LossMath.Sanitize(t.log_softmax(-1), inf), inf);
    }

    /// <summary>log(λ·a + (1−λ)·b) from log a, log b.</summary>
    private static Tensor LogMixture(Tensor logA, Tensor logB, double lambda)
    {
        if (lambda <= 0)
        {
            return logB;
        }

        if (lambda >= 1)
        {
            return logA;
        }

        return stack([logA.Add(Math.Log(lambda)), logB.Add(Math.Log(1 - lambda))]).logsumexp(0L);
    }
}
