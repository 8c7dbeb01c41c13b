using static TorchSharp.torch;

namespace Distill.Losses.Kernels;

/// <summary>
/// The chunk loss of the sparse top-k objectives' chunked variants (<c>sparse_forward_kl_chunked</c>, …): per chunk of
/// student logits [c, V], <c>(1 − α)·CE_sum + α·KD_sum</c> against the teacher's top-k rows [c, K] (ids, log-probs, log
/// tail mass), exactly as <see cref="SparseKdObjective"/> computes it over full logits. The teacher side is [N, K]; no
/// [tokens × V] teacher tensor exists.
/// </summary>
/// <remarks>
/// <para>
/// <see cref="Prepare"/> binds the teacher's rows to the batch (ignored rows get the same harmless targets as the
/// full-logits objective). Sparse forward KL has a closed-form gradient (<see cref="ChunkDivergence.TrySumAndGradient"/>), with the student
/// chunk as the only [c, V] buffer: with z = s/T, q = softmax(z) and teacher buckets P (k entries, plus the tail P_t with
/// <see cref="SparseTailHandling.TailBucket"/>),
/// </para>
/// <para>
/// dKL/dz_j = q_j − P_j for j in the top-k and q_j·(1 − P_t/q_tail) elsewhere (q_tail = Σ_{v ∉ top-k} q_v;
/// P_t = 0 with <see cref="SparseTailHandling.Renormalize"/>). With K = V there is no student tail bucket and
/// dKL/dz_j = q_j·Σ_k P_k − P_j. The CE term adds (1 − α)·(q − onehot(y)) (closed form only at T = 1 when α &lt; 1).
/// </para>
/// <para>
/// The other divergences (and chunks the closed form does not cover: ±inf logits, T ≠ 1 with α &lt; 1, a student tail
/// that could underflow float32) are differentiated by the kernel with autograd on the chunk.
/// </para>
/// </remarks>
/// <param name="name">The sparse objective's name (<see cref="SparseKdObjective.Names"/>).</param>
/// <param name="options">The <c>Sparse</c> options.</param>
internal sealed class SparseChunkDivergence(string name, SparseTopKOptions options) : ChunkDivergence
{
    /// <inheritdoc/>
    public override bool NeedsTeacherLogits => false;

    /// <inheritdoc/>
    public override ChunkDivergence Prepare(TeacherSource teacher, Tensor labels, int chunkSize, long vocab)
    {
        ArgumentNullException.ThrowIfNull(teacher);
        ArgumentNullException.ThrowIfNull(labels);
        var ids = teacher.TopKIds
            ?? throw new InvalidOperationException($"Objective '{name}{ObjectiveNames.ChunkedSuffix}' needs sparse teacher targets (top-k ids, log-probs), but the teacher source has none.");
        var (logProbs, logTail) = SparseKdObjective.SafeTargets(TokenReduction.ValidMask(labels), teacher.TopKLogProbs!, teacher.TopKLogTailMass);
        return new Bound(this, ids, logProbs, logTail);
    }

    /// <inheritdoc/>
    public override Tensor Sum(Tensor studentLogits, Tensor? teacherLogits, Tensor labels, long start) =>
        throw new InvalidOperationException("Sparse chunk loss: Prepare must bind the teacher's top-k rows first.");

    private Tensor ChunkSum(Tensor s, Tensor ids, Tensor logProbs, Tensor? logTail, Tensor labels)
    {
        var mask = TokenReduction.ValidMask(labels);
        var ce = TokenReduction.MaskedSum(CrossEntropy.PerToken(s, labels), mask);
        var kd = TokenReduction.MaskedSum(SparseKdObjective.PerToken(name, options, s, ids, logProbs, logTail), mask);
        return ce.Mul(1 - options.KdRate).Add(kd.Mul(options.KdRate));
    }

    /// <summary>Sparse forward KL (+ CE) in closed form; see the class remarks. False when a case is left to autograd.</summary>
    private bool ClosedForm(Tensor s, Tensor ids, Tensor logProbs, Tensor? logTail, Tensor labels, out Tensor sum, out Tensor gradient)
    {
        sum = null!;
        gradient = null!;
        double alpha = options.KdRate, temperature = options.Temperature;
        var tailBucket = options.TailHandling == SparseTailHandling.TailBucket;
        if (name != SparseKdObjective.ForwardKlName || s.dtype != ScalarType.Float32 || (alpha < 1 && temperature != 1.0)
            || (tailBucket && logTail is null) || !s.sum().isfinite().item<bool>())
        {
            return false;
        }

        long v = s.shape[^1], k = ids.shape[^1];
        var ignored = labels.eq(TorchScalars.Constant(DistillationBatch.IgnoreIndex)).unsqueeze(-1);          // [c, 1]
        var invT = 1.0 / temperature;

        // Teacher buckets at T: log P_k [c, K] and, with a tail bucket, log P_t [c, 1] (as SparseTopK.Buckets).
        var teacher = logProbs.to(ScalarType.Float32);
        Tensor logPk;
        Tensor? logPt = null;
        if (tailBucket)
        {
            var all = cat([teacher, logTail!.to(ScalarType.Float32).unsqueeze(-1)], -1);
            var logP = (temperature == 1.0 ? all : all.Mul(invT)).log_softmax(-1);
            logPk = logP.narrow(-1, 0, k);
            logPt = logP.narrow(-1, k, 1);
        }
        else
        {
            logPk = (temperature == 1.0 ? teacher : teacher.Mul(invT)).log_softmax(-1);
        }

        var pk = logPk.exp();
        var target = LossMath.SafeTargets(labels).unsqueeze(-1);
        var sY = alpha < 1 ? s.gather(-1, target) : null;                                 // T = 1 here

        // Student: z = s/T in place, z at the top-k ids, then s → q = softmax(z) in place, lse = max + log Σ exp.
        var zk = s.gather(-1, ids);
        if (tailBucket && k < v)
        {
            // q_tail ≥ exp(max_{v ∉ top-k} z_v − lse) ≥ exp((max_out − max)/T − log V). Below e^−80 it could underflow float32
            // (the full-logits formula keeps its exact log): leave such a chunk to autograd before s is overwritten.
            s.scatter_(-1, ids, full_like(zk, TorchScalars.Constant(double.NegativeInfinity)));
            var maxOut = s.amax([-1], keepdim: true);
            s.scatter_(-1, ids, zk);
            if (maxOut.sub(s.amax([-1], keepdim: true)).MulInPlace(invT).Lt(-80 + Math.Log(v)).any().item<bool>())
            {
                return false;
            }
        }

        if (temperature != 1.0)
        {
            s.MulInPlace(invT);
            zk.MulInPlace(invT);                                                               // the same products as s's
        }

        var lse = s.amax([-1], keepdim: true);
        s.sub_(lse).exp_();
        var z = s.sum([-1], keepdim: true);
        s.div_(z);
        lse.add_(z.log_(), TorchScalars.One);
        var q = s;

        // KL rows: Σ_k P_k (log P_k − (z_k − lse)) [+ P_t (log P_t − log q_tail)]; buckets with P = 0 count 0.
        var kdRows = pk.mul(logPk.sub(zk).add_(lse, TorchScalars.One)).masked_fill_(pk.eq(TorchScalars.Constant(0)), TorchScalars.Constant(0.0)).sum([-1], keepdim: true);
        var qk = q.gather(-1, ids);
        if (tailBucket && k < v)
        {
            q.scatter_(-1, ids, zeros_like(qk));                                         // q outside the top-k
            var qTail = q.sum([-1], keepdim: true);
            var pt = logPt!.exp();
            kdRows.add_(pt.mul(logPt.sub(qTail.log())).masked_fill_(pt.eq(TorchScalars.Constant(0)), TorchScalars.Constant(0.0)), TorchScalars.One);
            q.mul_(pt.div(qTail).MulInPlace(-alpha).add_(TorchScalars.Constant(1.0), TorchScalars.One));                                // q_j (1 − α P_t / q_tail), j ∉ top-k
            q.scatter_(-1, ids, qk.Add(pk, -alpha));                               // q_j − α P_j, j ∈ top-k
        }
        else if (tailBucket)
        {
            // K = V: no student tail bucket; Σ_k P_k = 1 − P_t.
            q.mul_(pk.sum([-1], keepdim: true).sub_(TorchScalars.Constant(1.0)).MulInPlace(alpha).add_(TorchScalars.Constant(1.0), TorchScalars.One));          // q_j (1 − α (1 − Σ P_k))
            q.scatter_add_(-1, ids, pk.Mul(-alpha));
        }
        else
        {
            q.scatter_add_(-1, ids, pk.Mul(-alpha));                                     // q_j − α P_j (ids distinct)
        }

        var grad = q;
        var kd = kdRows.masked_fill_(ignored, TorchScalars.Constant(0.0)).sum();
        if (alpha >= 1)
        {
            if (temperature != 1.0)
            {
                grad.MulInPlace(invT);
            }

            sum = kd;
        }
        else
        {
            grad.scatter_add_(-1, target, sY!.FullLike(-(1 - alpha)));                // + (1 − α)(q − onehot(y)), T = 1
            var ce = lse.sub_(sY!).masked_fill_(ignored, TorchScalars.Constant(0.0)).sum();
            sum = ce.Mul(1 - alpha).Add(kd.Mul(alpha));
        }

        gradient = grad.masked_fill_(ignored, TorchScalars.Constant(0.0));
        return true;
    }

    /// <summary>The sparse loss bound to one batch's teacher rows.</summary>
    private sealed class Bound(SparseChunkDivergence owner, Tensor ids, Tensor logProbs, Tensor? logTail) : ChunkDivergence
    {
        public override bool NeedsTeacherLogits => false;

        public override Tensor Sum(Tensor studentLogits, Tensor? teacherLogits, Tensor labels, long start)
        {
            var c = labels.shape[0];
            return owner.ChunkSum(studentLogits, ids.narrow(0, start, c), logProbs.narrow(0, start, c), logTail?.narrow(0, start, c), labels);
        }

        public override bool TrySumAndGradient(
            Tensor studentLogits, Tensor? teacherLogits, Tensor labels, long start, bool teacherIsFresh, out Tensor sum, out Tensor gradient)
        {
            var c = labels.shape[0];
            return owner.ClosedForm(studentLogits, ids.narrow(0, start, c), logProbs.narrow(0, start, c), logTail?.narrow(0, start, c), labels, out sum, out gradient);
        }
    }
}
