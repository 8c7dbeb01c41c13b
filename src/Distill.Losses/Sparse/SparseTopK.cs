using static TorchSharp.torch;

namespace Distill.Losses;

/// <summary>
/// The (k + 1)-bucket view of a sparse top-k teacher and a dense student that the sparse divergences compare: bucket
/// i &lt; k is vocabulary entry <c>ids[..., i]</c>, bucket k is everything else (the tail).
/// </summary>
public static class SparseTopK
{
    /// <summary>Builds student and teacher log-probabilities over the k + 1 buckets.</summary>
    /// <param name="studentLogits">[..., V]; float32, bfloat16 or float64.</param>
    /// <param name="topKIds">[..., K] int64 vocabulary ids of the teacher's top-k entries (distinct per position), K ≤ V.</param>
    /// <param name="topKLogProbs">[..., K] the teacher's log-probabilities of those entries at temperature 1.</param>
    /// <param name="logTailMass">[...] log(1 − Σ_k p_k); required for <see cref="SparseTailHandling.TailBucket"/>, ignored otherwise.</param>
    /// <param name="tail">How the tail is treated.</param>
    /// <param name="temperature">T: the student logits are divided by T; the teacher's buckets are raised to 1/T and renormalised.</param>
    /// <returns>
    /// (LogQ, LogP), each [..., K + 1] in the compute dtype. The student's tail bucket is log Σ_{v ∉ top-k} q_v (−inf when
    /// K = V); the teacher's is −inf for <see cref="SparseTailHandling.Renormalize"/>.
    /// </returns>
    /// <remarks>
    /// With <see cref="SparseTailHandling.TailBucket"/> and T ≠ 1 the tail is tempered as if it were one token (DistillKit's
    /// <c>leftover ** (1/T)</c>), an approximation: the teacher's true tail shape is unknown. Renormalise is exact at any T.
    /// </remarks>
    public static (Tensor LogQ, Tensor LogP) Buckets(Tensor studentLogits, Tensor topKIds, Tensor topKLogProbs, Tensor? logTailMass, SparseTailHandling tail, double temperature = 1.0)
    {
        ArgumentNullException.ThrowIfNull(studentLogits);
        ArgumentNullException.ThrowIfNull(topKIds);
        ArgumentNullException.ThrowIfNull(topKLogProbs);
        Check(studentLogits, topKIds, topKLogProbs, logTailMass, tail);
        using var scope = NewDisposeScope();
        long v = studentLogits.shape[^1], k = topKIds.shape[^1];
        var s = LossMath.Scale(studentLogits, temperature);
        var logSoftmax = s.log_softmax(-1);                                   // [..., V]
        var logQk = logSoftmax.gather(-1, topKIds);                           // [..., K]
        Tensor logQTail;
        if (k < v)
        {
            // log Σ over the entries outside the top-k, taken directly (exact and finite even when the tail is tiny).
            var inTopK = zeros_like(s, dtype: ScalarType.Bool).scatter(-1, topKIds, ones_like(topKIds, dtype: ScalarType.Bool));
            logQTail = LossMath.Fill(logSoftmax, inTopK, double.NegativeInfinity).logsumexp(-1, keepdim: true);
        }
        else
        {
            // K = V: the tail is empty. A constant, so no 0·inf reaches the backward pass.
            logQTail = full(logQk.shape[..^1].Append(1L).ToArray(), TorchScalars.Constant(double.NegativeInfinity), dtype: logQk.dtype, device: logQk.device);
        }

        var teacher = topKLogProbs.to(logQk.dtype);
        Tensor logP;
        if (tail == SparseTailHandling.Renormalize)
        {
            // p_i^(1/T) / Σ_k p_j^(1/T): exact, since the top-k logits differ from the log-probs by a per-position constant.
            var logPk = (temperature == 1.0 ? teacher : teacher.Div(temperature)).log_softmax(-1);
            logP = cat([logPk, full_like(logQTail, TorchScalars.Constant(double.NegativeInfinity))], -1);
        }
        else
        {
            var withTail = cat([teacher, logTailMass!.to(logQk.dtype).unsqueeze(-1)], -1);
            // log_softmax also renormalises a tail that was stored with rounding error (all −inf rows cannot occur: k ≥ 1).
            logP = (temperature == 1.0 ? withTail : withTail.Div(temperature)).log_softmax(-1);
        }

        var logQ = cat([logQk, logQTail], -1);
        return (logQ.MoveToOuterDisposeScope(), logP.detach().MoveToOuterDisposeScope());
    }

    private static void Check(Tensor student, Tensor ids, Tensor logProbs, Tensor? logTail, SparseTailHandling tail)
    {
        if (ids.dtype != ScalarType.Int64)
        {
            throw new ArgumentException($"Top-k ids must be int64, got {ids.dtype}.", nameof(ids));
        }

        var lead = student.shape[..^1];
        if (!ids.shape.SequenceEqual(logProbs.shape) || !ids.shape[..^1].SequenceEqual(lead))
        {
            throw new ArgumentException(
                $"Sparse teacher shapes do not match: student logits [{string.Join(", ", student.shape)}], top-k ids [{string.Join(", ", ids.shape)}], top-k log-probs [{string.Join(", ", logProbs.shape)}]; expected ids and log-probs [{string.Join(", ", lead)}, K].");
        }

        if (ids.shape[^1] < 1 || ids.shape[^1] > student.shape[^1])
        {
            throw new ArgumentException($"Top-k width K = {ids.shape[^1]} must be between 1 and the student vocabulary V = {student.shape[^1]}.", nameof(ids));
        }

        if (tail == SparseTailHandling.TailBucket)
        {
            if (logTail is null)
            {
                throw new ArgumentException($"{nameof(SparseTailHandling)}.{nameof(SparseTailHandling.TailBucket)} needs the teacher's log tail mass (TeacherOutput.TopKLogTailMass), which is null; use {nameof(SparseTailHandling.Renormalize)} or a teacher that supplies it.", nameof(logTail));
            }

            if (!logTail.shape.SequenceEqual(lead))
            {
                throw new ArgumentException($"Log tail mass has shape [{string.Join(", ", logTail.shape)}]; expected [{string.Join(", ", lead)}].", nameof(logTail));
            }
        }
    }
}
