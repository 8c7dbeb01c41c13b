using System.Buffers;
using static TorchSharp.torch;

namespace Distill.Data;

/// <summary>
/// Maps between a padded <see cref="DistillationBatch"/> and per-row <see cref="TeacherCacheExample"/>s, so that any
/// sparse top-k teacher (a cache, a server) can serve a batch: <see cref="FromBatch(DistillationBatch)"/> extracts each row's real tokens and
/// scored positions, <see cref="ToTeacherOutput(DistillationBatch, IReadOnlyList{ValueTuple{TeacherCacheExample, int}}, IReadOnlyList{TopKSequence}, int)"/> places per-row top-k results at the batch's positions.
/// </summary>
public static class SparseBatchRows
{
    /// <summary>Extracts each batch row's unpadded input ids and scored positions (left or right padding).</summary>
    /// <param name="batch">A same-tokenizer batch.</param>
    /// <returns>Per row: the example (<see cref="TeacherCacheExample.Row"/> = batch row) and the column of its first real token.</returns>
    /// <exception cref="InvalidOperationException">The batch carries teacher tokens, the mask has a gap, or a padded position is scored.</exception>
    public static IReadOnlyList<(TeacherCacheExample Example, int Offset)> FromBatch(DistillationBatch batch)
    {
        ArgumentNullException.ThrowIfNull(batch);
        if (batch.HasTeacherTokens)
        {
            throw new InvalidOperationException("This sparse top-k teacher serves same-tokenizer batches; this batch carries the teacher's own tokenisation (a cross-tokenizer objective). Build the cache with TeacherCacheIdentity.Tokens = TeacherCacheTokens.Teacher.");
        }

        return FromBatch(batch, TeacherCacheTokens.Student);
    }

    /// <summary>Extracts each batch row's unpadded ids and scored positions on one side of the batch (left or right padding).</summary>
    /// <param name="batch">The batch.</param>
    /// <param name="tokens">The student's tokens (<c>InputIds</c>, <c>AttentionMask</c>, <c>Labels</c>) or the teacher's
    /// (<c>TeacherInputIds</c>, <c>TeacherAttentionMask</c>, <c>TeacherLabels</c>).</param>
    /// <returns>Per row: the example (<see cref="TeacherCacheExample.Row"/> = batch row) and the column of its first real token.</returns>
    /// <exception cref="InvalidOperationException">The teacher side is asked of a batch without teacher tokens, the mask has a gap, or a padded position is scored.</exception>
    public static IReadOnlyList<(TeacherCacheExample Example, int Offset)> FromBatch(DistillationBatch batch, TeacherCacheTokens tokens)
    {
        ArgumentNullException.ThrowIfNull(batch);
        var (inputIds, attention, labelTensor) = Side(batch, tokens);
        int b = (int)inputIds.shape[0], t = (int)inputIds.shape[1];
        var ids = inputIds.cpu().data<long>().ToArray();
        var mask = attention.cpu().data<long>().ToArray();
        var labels = labelTensor.cpu().data<long>().ToArray();
        var rows = new (TeacherCacheExample, int)[b];
        for (var row = 0; row < b; row++)
        {
            var o = row * t;
            var start = 0;
            while (start < t && mask[o + start] == 0)
            {
                start++;
            }

            var end = start;
            while (end < t && mask[o + end] != 0)
            {
                end++;
            }

            for (var x = end; x < t; x++)
            {
                if (mask[o + x] != 0)
                {
                    throw new InvalidOperationException($"Batch row {row}: the attention mask has a gap (padding inside the sequence); sparse teachers need contiguous tokens.");
                }
            }

            var real = new int[end - start];
            for (var x = start; x < end; x++)
            {
                real[x - start] = checked((int)ids[o + x]);
            }

            var scored = new List<int>();
            for (var x = 0; x < t; x++)
            {
                if (labels[o + x] != DistillationBatch.IgnoreIndex)
                {
                    if (x < start || x >= end)
                    {
                        throw new InvalidOperationException($"Batch row {row}: position {x} is scored but padded.");
                    }

                    scored.Add(x - start);
                }
            }

            rows[row] = (new TeacherCacheExample(row, real, scored), start);
        }

        return rows;
    }

    /// <summary>
    /// Builds a <see cref="TeacherOutput"/> with [B, T, K] top-k ids and log-probs and [B, T] log tail mass on the batch's
    /// device. Positions that are not scored hold a harmless uniform placeholder (ids 0 … k − 1, log-probs −log k, tail −inf).
    /// </summary>
    /// <param name="batch">The batch.</param>
    /// <param name="rows">The rows from <see cref="FromBatch(DistillationBatch)"/>.</param>
    /// <param name="values">One result per row, over that row's scored positions.</param>
    /// <param name="k">The top-k width.</param>
    /// <returns>The sparse teacher output (the caller owns the tensors).</returns>
    public static TeacherOutput ToTeacherOutput(DistillationBatch batch, IReadOnlyList<(TeacherCacheExample Example, int Offset)> rows, IReadOnlyList<TopKSequence> values, int k) =>
        ToTeacherOutput(batch, TeacherCacheTokens.Student, rows, values, k);

    /// <summary>As <see cref="ToTeacherOutput(DistillationBatch, IReadOnlyList{ValueTuple{TeacherCacheExample, int}}, IReadOnlyList{TopKSequence}, int)"/>
    /// on one side of the batch: with <see cref="TeacherCacheTokens.Teacher"/> the tensors are [B, T_teacher, K] and [B, T_teacher].</summary>
    /// <param name="batch">The batch.</param>
    /// <param name="tokens">The side the rows came from (<see cref="FromBatch(DistillationBatch, TeacherCacheTokens)"/>).</param>
    /// <param name="rows">The rows.</param>
    /// <param name="values">One result per row, over that row's scored positions.</param>
    /// <param name="k">The top-k width.</param>
    /// <returns>The sparse teacher output (the caller owns the tensors).</returns>
    public static TeacherOutput ToTeacherOutput(DistillationBatch batch, TeacherCacheTokens tokens, IReadOnlyList<(TeacherCacheExample Example, int Offset)> rows, IReadOnlyList<TopKSequence> values, int k)
    {
        ArgumentNullException.ThrowIfNull(batch);
        ArgumentNullException.ThrowIfNull(rows);
        ArgumentNullException.ThrowIfNull(values);
        var inputIds = Side(batch, tokens).InputIds;
        long b = inputIds.shape[0], t = inputIds.shape[1];
        if (rows.Count != b || values.Count != b)
        {
            throw new ArgumentException($"{rows.Count} rows and {values.Count} results for a batch of {b}.");
        }

        // Filled in pooled buffers and copied into the tensors in one pass each: no [B, T, K] managed garbage per batch (made
        // on the prefetch thread while the training thread runs libtorch calls, such garbage drives finalizer races), and
        // no per-element TensorAccessor indexing (each of those makes native calls and allocates).
        var n = checked((int)(b * t));
        var nk = checked(n * k);
        var idBuffer = ArrayPool<long>.Shared.Rent(nk);
        var logProbBuffer = ArrayPool<float>.Shared.Rent(nk);
        var tailBuffer = ArrayPool<float>.Shared.Rent(n);
        try
        {
            var outIds = idBuffer.AsSpan(0, nk);
            var outLogProbs = logProbBuffer.AsSpan(0, nk);
            var outTail = tailBuffer.AsSpan(0, n);
            var uniform = (float)-Math.Log(k);
            for (var i = 0; i < n; i++)
            {
                for (var j = 0; j < k; j++)
                {
                    outIds[(i * k) + j] = j;
                    outLogProbs[(i * k) + j] = uniform;
                }

                outTail[i] = float.NegativeInfinity;
            }

            for (var row = 0; row < b; row++)
            {
                var (example, offset) = rows[row];
                var v = values[row];
                v.Check(example, k, "sparse teacher");
                for (var j = 0; j < example.ScoredPositions.Count; j++)
                {
                    var at = checked((int)((row * t) + offset + example.ScoredPositions[j]));
                    for (var x = 0; x < k; x++)
                    {
                        outIds[(at * k) + x] = v.Ids[(j * k) + x];
                    }

                    v.LogProbs.AsSpan(j * k, k).CopyTo(outLogProbs.Slice(at * k, k));
                    outTail[at] = v.LogTailMass[j];
                }
            }

            var ids = empty(nk, ScalarType.Int64);
            var logProbs = empty(nk, ScalarType.Float32);
            var tails = empty(n, ScalarType.Float32);
            using (var a = ids.data<long>())
            {
                a.CopyFrom(new ReadOnlySpan<long>(idBuffer, 0, nk));
            }

            using (var a = logProbs.data<float>())
            {
                a.CopyFrom(new ReadOnlySpan<float>(logProbBuffer, 0, nk));
            }

            using (var a = tails.data<float>())
            {
                a.CopyFrom(new ReadOnlySpan<float>(tailBuffer, 0, n));
            }

            var device = batch.InputIds.device;
            return new TeacherOutput
            {
                TopKIndices = ids.reshape(b, t, k).to(device),
                TopKLogProbs = logProbs.reshape(b, t, k).to(device),
                TopKLogTailMass = tails.reshape(b, t).to(device),
            };
        }
        finally
        {
            ArrayPool<long>.Shared.Return(idBuffer);
            ArrayPool<float>.Shared.Return(logProbBuffer);
            ArrayPool<float>.Shared.Return(tailBuffer);
        }
    }

    private static (Tensor InputIds, Tensor AttentionMask, Tensor Labels) Side(DistillationBatch batch, TeacherCacheTokens tokens) => tokens switch
    {
        TeacherCacheTokens.Student => (batch.InputIds, batch.AttentionMask, batch.Labels),
        TeacherCacheTokens.Teacher when batch.HasTeacherTokens && batch.TeacherLabels is not null && batch.TeacherAttentionMask is not null =>
            (batch.TeacherInputIds!, batch.TeacherAttentionMask, batch.TeacherLabels),
        TeacherCacheTokens.Teacher => throw new InvalidOperationException("This sparse teacher holds rows in the teacher's tokenisation, but the batch carries no teacher tokens (TeacherInputIds, TeacherAttentionMask, TeacherLabels): tokenize the dataset with the teacher's tokenizer too, and use a cross-tokenizer objective (uld)."),
        _ => throw new ArgumentOutOfRangeException(nameof(tokens), tokens, "Unknown TeacherCacheTokens value."),
    };
}
