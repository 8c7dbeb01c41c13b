using static TorchSharp.torch;

namespace Distill.Losses;

/// <summary>Forward KL, <c>KL(p_teacher || q_student)</c>, against a sparse top-k teacher, per token.</summary>
/// <remarks>
/// <see cref="SparseTailHandling.Renormalize"/> is DistillKit's <c>sparse_kl_div</c> with <c>ZERO</c>;
/// <see cref="SparseTailHandling.TailBucket"/> is the same with <c>SYMMETRIC_UNIFORM</c>. With K = V both equal
/// <see cref="ForwardKl"/>.
/// </remarks>
public static class SparseForwardKl
{
    /// <summary>Σ over the k + 1 buckets of p·(log p − log q); buckets where either side is −inf count 0.</summary>
    /// <param name="studentLogits">[..., V].</param>
    /// <param name="topKIds">[..., K] int64.</param>
    /// <param name="topKLogProbs">[..., K] teacher log-probs at temperature 1.</param>
    /// <param name="logTailMass">[...] or <see langword="null"/> (only for <see cref="SparseTailHandling.Renormalize"/>).</param>
    /// <param name="tail">Tail handling.</param>
    /// <param name="temperature">T (no T² factor, as <see cref="ForwardKl"/>).</param>
    /// <returns>[...] float32, unmasked.</returns>
    public static Tensor PerToken(Tensor studentLogits, Tensor topKIds, Tensor topKLogProbs, Tensor? logTailMass, SparseTailHandling tail, double temperature = 1.0)
    {
        using var scope = NewDisposeScope();
        var (logQ, logP) = SparseTopK.Buckets(studentLogits, topKIds, topKLogProbs, logTailMass, tail, temperature);
        return LossMath.KlFromLogs(logP, logQ).MoveToOuterDisposeScope();
    }
}
