using static TorchSharp.torch;

namespace Distill.Losses;

/// <summary>Total variation distance, ½ Σ |q − p|, against a sparse top-k teacher, per token.</summary>
/// <remarks>
/// Over the k + 1 buckets. Merging the tail into one bucket is exact for <see cref="SparseTailHandling.Renormalize"/>
/// (p = 0 on every tail entry, so Σ_tail |q_v − 0| = q_tail) and a lower bound for <see cref="SparseTailHandling.TailBucket"/>.
/// With K = V it equals <see cref="TotalVariation"/>.
/// </remarks>
public static class SparseTotalVariation
{
    /// <summary>Per-token TVD over the k + 1 buckets.</summary>
    /// <inheritdoc cref="SparseForwardKl.PerToken" path="/param"/>
    /// <returns>[...] float32, unmasked, in [0, 1].</returns>
    public static Tensor PerToken(Tensor studentLogits, Tensor topKIds, Tensor topKLogProbs, Tensor? logTailMass, SparseTailHandling tail, double temperature = 1.0)
    {
        using var scope = NewDisposeScope();
        var (logQ, logP) = SparseTopK.Buckets(studentLogits, topKIds, topKLogProbs, logTailMass, tail, temperature);
        return (logQ.exp() - logP.exp()).abs().sum(-1).Mul(0.5).MoveToOuterDisposeScope();
    }
}
