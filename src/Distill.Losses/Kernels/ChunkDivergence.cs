using static TorchSharp.torch;

namespace Distill.Losses.Kernels;

/// <summary>
/// The loss a fused kernel evaluates on one chunk of rows: a summed (masked) loss from student logits [c, V], teacher
/// logits [c, V] (or an undefined tensor when the objective is teacher-free) and labels [c].
/// </summary>
/// <remarks>
/// The kernel differentiates <see cref="Sum"/> with autograd on the chunk (any divergence works); a subclass may also
/// supply the gradient analytically (<see cref="TrySumAndGradient"/>) to skip the chunk-level autograd graph.
/// </remarks>
internal abstract class ChunkDivergence
{
    /// <summary>Gets a value indicating whether the divergence reads teacher logits.</summary>
    public virtual bool NeedsTeacher => true;

    /// <summary>
    /// Gets a value indicating whether the kernel passes dense teacher logits [c, V] to each chunk; false for a teacher
    /// read otherwise (a sparse top-k teacher bound in <see cref="Prepare"/>).
    /// </summary>
    public virtual bool NeedsTeacherLogits => NeedsTeacher;

    /// <summary>
    /// Binds the divergence to one batch before the loss pass. A divergence that needs statistics over all rows (chunked
    /// ATKD's batch median) runs its first pass over the teacher's chunks here and returns a divergence holding them; the
    /// default returns this instance. Tensors it creates live in the caller's dispose scope (the kernel's forward).
    /// </summary>
    /// <param name="teacher">The teacher's logits source.</param>
    /// <param name="labels">[N] int64, all rows.</param>
    /// <param name="chunkSize">Rows per chunk (bounds the first pass's working set as well).</param>
    /// <param name="vocab">V (the student's lm_head rows; teacher chunks are cut to it).</param>
    /// <returns>The divergence to evaluate the chunks with.</returns>
    public virtual ChunkDivergence Prepare(TeacherSource teacher, Tensor labels, int chunkSize, long vocab) => this;

    /// <summary>The summed loss of the chunk (scalar float32), differentiable w.r.t. <paramref name="studentLogits"/>.</summary>
    /// <param name="studentLogits">[c, V].</param>
    /// <param name="teacherLogits">[c, V] or <see langword="null"/>.</param>
    /// <param name="labels">[c].</param>
    /// <param name="start">Index of the chunk's first row in the batch.</param>
    /// <returns>The chunk's summed loss.</returns>
    public abstract Tensor Sum(Tensor studentLogits, Tensor? teacherLogits, Tensor labels, long start);

    /// <summary>
    /// Optionally the loss and dLoss/dStudentLogits [c, V] in closed form; false to let the kernel use autograd. When it
    /// returns true it may have consumed (overwritten or disposed) <paramref name="studentLogits"/>, the kernel's own chunk,
    /// to cut peak memory, and, when <paramref name="teacherIsFresh"/>, <paramref name="teacherLogits"/> too.
    /// </summary>
    /// <param name="studentLogits">[c, V] float32, owned by the kernel.</param>
    /// <param name="teacherLogits">[c, V] or <see langword="null"/>.</param>
    /// <param name="labels">[c].</param>
    /// <param name="start">Index of the chunk's first row in the batch.</param>
    /// <param name="teacherIsFresh">Whether <paramref name="teacherLogits"/> was computed for this chunk (may be overwritten) rather than being a view of the caller's logits.</param>
    /// <param name="sum">The chunk's summed loss.</param>
    /// <param name="gradient">dLoss/dStudentLogits [c, V] float32.</param>
    /// <returns>Whether the closed form applied.</returns>
    public virtual bool TrySumAndGradient(
        Tensor studentLogits, Tensor? teacherLogits, Tensor labels, long start, bool teacherIsFresh, out Tensor sum, out Tensor gradient)
    {
        sum = null!;
        gradient = null!;
        return false;
    }
}

/// <summary>A chunk loss given by a function of (student logits, teacher logits, labels).</summary>
internal sealed class FunctionChunkDivergence(Func<Tensor, Tensor?, Tensor, Tensor> sum, bool needsTeacher = true) : ChunkDivergence
{
    public override bool NeedsTeacher => needsTeacher;

    public override Tensor Sum(Tensor studentLogits, Tensor? teacherLogits, Tensor labels, long start) => sum(studentLogits, teacherLogits, labels);
}

/// <summary>
/// (1 − α)·CE + α·KL(p_t || q_s) at temperature T, summed over scored rows, with its closed-form gradient
/// dL/ds = (1 − α)·(softmax(s) − onehot(y)) + (α / T)·(softmax(s/T) − softmax(t/T)) on scored rows, 0 elsewhere.
/// α = 1 gives pure forward KL (the benchmark's loss). Chunks holding ±inf logits fall back to autograd of the masked
/// formula.
/// </summary>
/// <remarks>
/// Working set: two [c, V] float32 buffers for pure KD at any T with teacher logits given (the student chunk, turned into
/// softmax(s/T) and then into the gradient in place, and p_t), one more while a teacher chunk computed from hidden states
/// or a scaled teacher copy (T ≠ 1) is alive, and one more for the CE term when α &lt; 1 and T ≠ 1. The KL is formed
/// without a [c, V] log-probability tensor: Σ_v p (log p − log q) = (Σ_v p·t/T − lse_t) − (Σ_v p·s/T − lse_s), with
/// row dot products (batched matrix products) and lse_t = max(t/T) − log max(p).
/// </remarks>
internal sealed class ForwardKlChunkDivergence(double kdRate, double temperature) : ChunkDivergence
{
    public override Tensor Sum(Tensor studentLogits, Tensor? teacherLogits, Tensor labels, long start)
    {
        var mask = TokenReduction.ValidMask(labels);
        var kd = TokenReduction.MaskedSum(ForwardKl.PerToken(studentLogits, teacherLogits!, temperature), mask);
        if (kdRate >= 1)
        {
            return kd;
        }

        var ce = TokenReduction.MaskedSum(CrossEntropy.PerToken(studentLogits, labels), mask);
        return ce.Mul(1 - kdRate).Add(kd.Mul(kdRate));
    }

    public override bool TrySumAndGradient(
        Tensor studentLogits, Tensor? teacherLogits, Tensor labels, long start, bool teacherIsFresh, out Tensor sum, out Tensor gradient)
    {
        sum = null!;
        gradient = null!;
        var s = studentLogits;
        var t = teacherLogits!;
        // A ±inf logit (masked vocabulary entry) would make the closed form 0·inf: use autograd of the masked formula then.
        // A non-finite total sum detects it without a [c, V] mask temporary (an overflowing sum of huge finite logits only
        // costs the slower, equally exact fallback).
        if (s.dtype != ScalarType.Float32 || !s.sum().isfinite().item<bool>() || !t.sum().isfinite().item<bool>())
        {
            return false;
        }

        var invT = 1.0 / temperature;
        var ignored = labels.eq(TorchScalars.Constant(DistillationBatch.IgnoreIndex)).unsqueeze(-1);         // [c, 1]
        var target = LossMath.SafeTargets(labels).unsqueeze(-1);

        // Teacher: p = softmax(t/T) [buffer P]; Σ_v p log p = Σ_v p·t/T − lse_t.
        var ownsScaled = temperature != 1.0 || t.dtype != ScalarType.Float32;
        var ts = !ownsScaled ? t : teacherIsFresh && t.dtype == ScalarType.Float32 ? t.MulInPlace(invT) : LossMath.ToCompute(t).Mul(invT);
        var p = ts.softmax(-1);
        var lseT = ts.amax([-1], keepdim: true).sub_(p.amax([-1], keepdim: true).log_());
        var pLogP = RowDot(p, ts).sub_(lseT);                                            // [c, 1]
        if (!ReferenceEquals(ts, t))
        {
            ts.Dispose();
        }

        if (teacherIsFresh)
        {
            t.Dispose();                                                                 // consumed (see base class)
        }

        // Student, before it is overwritten: Σ_v p·s, s_y, and softmax(s) when the CE term needs it at T ≠ 1.
        var pS = RowDot(p, s);
        Tensor? sY = null, q1 = null, lse1 = null;
        if (kdRate < 1)
        {
            sY = s.gather(-1, target);
            if (temperature != 1.0)
            {
                q1 = s.softmax(-1);                                                      // [buffer 3] softmax(s)
                lse1 = s.amax([-1], keepdim: true).sub_(q1.amax([-1], keepdim: true).log_());
            }
        }

        // s → softmax(s/T) in place; lse_s = max + log Σ exp.
        if (temperature != 1.0)
        {
            s.MulInPlace(invT);
        }

        var lseS = s.amax([-1], keepdim: true);
        s.sub_(lseS).exp_();
        var z = s.sum([-1], keepdim: true);
        s.div_(z);
        lseS.add_(z.log_(), TorchScalars.One);
        var kdRows = pLogP.sub_(pS.MulInPlace(invT)).add_(lseS, TorchScalars.One);                               // Σ p log p − (Σ p·s/T − lse_s)
        var kd = kdRows.masked_fill_(ignored, TorchScalars.Constant(0.0)).sum();
        var grad = s;                                                                    // q_T, becomes the gradient in place
        if (kdRate >= 1)
        {
            grad.sub_(p);
            p.Dispose();
            if (temperature != 1.0)
            {
                grad.MulInPlace(invT);
            }

            sum = kd;
            gradient = grad.masked_fill_(ignored, TorchScalars.Constant(0.0));
            return true;
        }

        Tensor ceRows;
        if (q1 is null)
        {
            // T = 1: α(q − p) + (1 − α)(q − onehot) = q − α·p − (1 − α)·onehot.
            grad.AddInPlace(p, -kdRate);
            p.Dispose();
            grad.scatter_add_(-1, target, sY!.FullLike(-(1 - kdRate)));
            ceRows = lseS.sub_(sY!);
        }
        else
        {
            grad.sub_(p).MulInPlace(kdRate * invT);                                            // (α/T)(q_T − p)
            p.Dispose();
            q1.scatter_add_(-1, target, full_like(sY!, TorchScalars.Constant(-1.0)));                           // softmax(s) − onehot(y)
            grad.AddInPlace(q1, 1 - kdRate);
            q1.Dispose();
            ceRows = lse1!.sub_(sY!);
        }

        var ce = ceRows.masked_fill_(ignored, TorchScalars.Constant(0.0)).sum();
        sum = ce.Mul(1 - kdRate).Add(kd.Mul(kdRate));
        gradient = grad.masked_fill_(ignored, TorchScalars.Constant(0.0));
        return true;
    }

    /// <summary>Row-wise dot product Σ_v a[i, v]·b[i, v] as [c, 1], without a [c, V] product temporary.</summary>
    private static Tensor RowDot(Tensor a, Tensor b) => a.unsqueeze(1).bmm(b.unsqueeze(2)).squeeze(-1);
}
