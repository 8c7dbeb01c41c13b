using static TorchSharp.torch;

namespace Distill.Losses;

/// <summary>Reverse KL, <c>KL(q_student || p_teacher)</c>, against a sparse top-k teacher, per token.</summary>
/// <remarks>
/// With <see cref="SparseTailHandling.Renormalize"/> the student's tail bucket meets p = 0 and is dropped, as
/// <see cref="ReverseKl"/> drops entries whose teacher logit is −inf (DSKD's inf mask); the sum then runs over the
/// teacher's top-k only. With <see cref="SparseTailHandling.TailBucket"/> it is a true KL over k + 1 buckets.
/// </remarks>
public static class SparseReverseKl
{
    /// <summary>Σ over the k + 1 buckets of q·(log q − log p); buckets where either side is −inf count 0.</summary>
    /// <inheritdoc cref="SparseForwardKl.PerToken" path="/param"/>
    /// <returns>[...] float32, unmasked.</returns>
    public static Tensor PerToken(Tensor studentLogits, Tensor topKIds, Tensor topKLogProbs, Tensor? logTailMass, SparseTailHandling tail, double temperature = 1.0)
    {
        using var scope = NewDisposeScope();
        var (logQ, logP) = SparseTopK.Buckets(studentLogits, topKIds, topKLogProbs, logTailMass, tail, temperature);
        return LossMath.KlFromLogs(logQ, logP).MoveToOuterDisposeScope();
    }
}
