using Distill.Losses;
using Distill.Losses.Kernels;
using static TorchSharp.torch;

namespace Distill.Benchmarks;

/// <summary>
/// The two KD loss variants of benchmarks/torch_ref/bench.py (section <c>kd</c>), op for op: summed forward KL at T = 1 over
/// non-ignored rows of student logits h·Wᵀ against fixed teacher logits t, forward + backward.
/// </summary>
internal static class KdLossKernels
{
    /// <summary>Inputs as bench.py's <c>kd_inputs</c>: h ~ N(0,1) [N,H], W ~ N(0,0.02²) [V,H], t ~ N(0,2²) [N,V], labels with exactly N/10 rows −100.</summary>
    internal static (Tensor H, Tensor W, Tensor T, Tensor Labels) Inputs(long n, long h, long v, ulong seed)
    {
        var g = new Generator(seed);
        var hidden = randn(n, h, generator: g).requires_grad_(true);
        var weight = randn(v, h, generator: g).mul_(0.02).requires_grad_(true);
        var teacher = randn(n, v, generator: g).mul_(2.0);
        var labels = randint(0, v, [n], generator: g, dtype: ScalarType.Int64);
        var ignored = randperm(n, generator: g).narrow(0, 0, n / 10);
        labels.index_put_(tensor(DistillationBatch.IgnoreIndex), ignored);
        return (hidden.DetachFromDisposeScope(), weight.DetachFromDisposeScope(), teacher.DetachFromDisposeScope(), labels.DetachFromDisposeScope());
    }

    /// <summary>(a) naive: full [N,V] logits, log_softmax, kl_div(log_target), masked sum; autograd backward.</summary>
    internal static float Naive(Tensor h, Tensor w, Tensor t, Tensor labels)
    {
        h.grad = null;
        w.grad = null;
        using var scope = NewDisposeScope();
        var s = nn.functional.linear(h, w);                                              // [N,V] student logits
        var logpS = nn.functional.log_softmax(s, -1);
        var logpT = nn.functional.log_softmax(t, -1);
        // kl_div(input = log p_s, target = log p_t, log_target) = p_t (log p_t − log p_s): KL(teacher || student).
        var kl = nn.functional.kl_div(logpS, logpT, log_target: true, reduction: nn.Reduction.None).sum(-1);
        var loss = kl.masked_fill(labels.eq(DistillationBatch.IgnoreIndex), 0.0).sum();
        loss.backward();
        return loss.item<float>();
    }

    /// <summary>(b) chunked: Distill's fused lm_head + forward-KL kernel (custom autograd function), chunk rows at a time.</summary>
    /// <remarks><paramref name="bfloat16"/>: the kernel's matrix products in bfloat16 (<c>LossesOptions.ChunkedBfloat16Matmuls</c>; variant <c>chunked_bf16</c>).</remarks>
    internal static float Chunked(Tensor h, Tensor w, Tensor t, Tensor labels, int chunk, bool bfloat16 = false)
    {
        h.grad = null;
        w.grad = null;
        using var scope = NewDisposeScope();
        var loss = FusedLinearDivergence.Apply(h, w, null, new TeacherSource(t), labels, new ForwardKlChunkDivergence(kdRate: 1.0, temperature: 1.0), chunk, bfloat16: bfloat16);
        loss.backward();
        return loss.item<float>();
    }

    /// <summary>
    /// The sparse teacher of bench.py's inputs: the top-<paramref name="k"/> of log_softmax(t) (ids, log-probs) and the log of
    /// the remaining mass, as an offline cache stores them ([N, K], [N, K], [N]).
    /// </summary>
    internal static (Tensor Ids, Tensor LogProbs, Tensor LogTail) TopK(Tensor t, long k)
    {
        using var scope = NewDisposeScope();
        var logP = t.log_softmax(-1);
        var (values, ids) = logP.topk((int)k);
        var tail = logP.scatter(-1, ids, full_like(values, double.NegativeInfinity)).logsumexp(-1);
        return (ids.DetachFromDisposeScope(), values.DetachFromDisposeScope(), tail.DetachFromDisposeScope());
    }

    /// <summary>
    /// (c) sparse chunked: the same fused kernel against top-k teacher rows (<c>sparse_forward_kl_chunked</c>'s chunk loss,
    /// pure KD at T = 1): no [N, V] teacher tensor is read.
    /// </summary>
    internal static float SparseChunked(Tensor h, Tensor w, (Tensor Ids, Tensor LogProbs, Tensor LogTail) teacher, Tensor labels, int chunk, SparseTailHandling tail)
    {
        h.grad = null;
        w.grad = null;
        using var scope = NewDisposeScope();
        var options = new SparseTopKOptions { KdRate = 1.0, Temperature = 1.0, TailHandling = tail };
        var loss = FusedLinearDivergence.Apply(
            h, w, null, TeacherSource.Sparse(teacher.Ids, teacher.LogProbs, teacher.LogTail), labels, new SparseChunkDivergence("sparse_forward_kl", options), chunk);
        loss.backward();
        return loss.item<float>();
    }
}
