using static TorchSharp.torch;

namespace Distill.Losses;

/// <summary>Generalised JSD(β) (<see cref="GeneralizedJsd"/>, TRL's GKD) against a sparse top-k teacher, per token.</summary>
/// <remarks>
/// β·KL(p || m) + (1−β)·KL(q || m), m = β·p + (1−β)·q over the k + 1 buckets; β = 0 is <see cref="SparseForwardKl"/>,
/// β = 1 <see cref="SparseReverseKl"/>. Buckets where either side is −inf count 0, as in the dense version, so with
/// <see cref="SparseTailHandling.Renormalize"/> the student's tail bucket is dropped.
/// </remarks>
public static class SparseGeneralizedJsd
{
    /// <summary>Per-token JSD(β) over the k + 1 buckets.</summary>
    /// <param name="studentLogits">[..., V].</param>
    /// <param name="topKIds">[..., K] int64.</param>
    /// <param name="topKLogProbs">[..., K] teacher log-probs at temperature 1.</param>
    /// <param name="logTailMass">[...] or <see langword="null"/> (only for <see cref="SparseTailHandling.Renormalize"/>).</param>
    /// <param name="tail">Tail handling.</param>
    /// <param name="beta">β ∈ [0, 1].</param>
    /// <param name="temperature">T.</param>
    /// <returns>[...] float32, unmasked.</returns>
    public static Tensor PerToken(Tensor studentLogits, Tensor topKIds, Tensor topKLogProbs, Tensor? logTailMass, SparseTailHandling tail, double beta = 0.5, double temperature = 1.0)
    {
        if (beta <= 0)
        {
            return SparseForwardKl.PerToken(studentLogits, topKIds, topKLogProbs, logTailMass, tail, temperature);
        }

        if (beta >= 1)
        {
            return SparseReverseKl.PerToken(studentLogits, topKIds, topKLogProbs, logTailMass, tail, temperature);
        }

        using var scope = NewDisposeScope();
        var (logQ, logP) = SparseTopK.Buckets(studentLogits, topKIds, topKLogProbs, logTailMass, tail, temperature);
        var inf = logQ.isneginf().logical_or(logP.isneginf());
        var q = LossMath.Sanitize(logQ, inf);
        var p = LossMath.Sanitize(logP, inf);
        var logM = stack([q.Add(Math.Log(1 - beta)), p.Add(Math.Log(beta))]).logsumexp(0L);
        // kl_div(input = log m, target = log p, log_target) = KL(p || m); likewise KL(q || m). TRL's argument order.
        var klTeacher = nn.functional.kl_div(logM, p, log_target: true, reduction: nn.Reduction.None);
        var klStudent = nn.functional.kl_div(logM, q, log_target: true, reduction: nn.Reduction.None);
        var jsd = klTeacher.Mul(beta).Add(klStudent.Mul(1 - beta));
        return LossMath.Fill(jsd, inf, 0.0).sum(-1).MoveToOuterDisposeScope();
    }
}
