using System.Buffers;
using static TorchSharp.torch;

namespace Distill.Data;

/// <summary>
/// An <see cref="ITeacher"/> over an offline cache: for each batch row it finds the cached example by content (input
/// ids without padding + scored positions) and returns <see cref="TeacherOutput.TopKIndices"/>,
/// <see cref="TeacherOutput.TopKLogProbs"/> and <see cref="TeacherOutput.TopKLogTailMass"/> at the batch's positions.
/// </summary>
/// <remarks>
/// Works with left or right padding and any batch order, because lookups are by content. Positions that are not scored
/// hold a harmless uniform placeholder (ids 0 … k − 1, log-probs −log k, tail −inf). A batch row that is not in the cache
/// is an error, never a silent zero. Not thread-safe; the reader is.
/// </remarks>
public sealed class CachedTopKTeacher : ITeacher, IDisposable
{
    private readonly bool ownsReader;

    /// <summary>Wraps an open reader.</summary>
    /// <param name="reader">The cache.</param>
    /// <param name="ownsReader">Whether <see cref="Dispose"/> disposes the reader.</param>
    public CachedTopKTeacher(TeacherCacheReader reader, bool ownsReader = true)
    {
        ArgumentNullException.ThrowIfNull(reader);
        Reader = reader;
        this.ownsReader = ownsReader;
    }

    /// <summary>Gets the cache.</summary>
    public TeacherCacheReader Reader { get; }

    /// <inheritdoc />
    /// <remarks>Returns sparse top-k only (an objective that needs full logits or hidden states cannot use a cache).</remarks>
    public TeacherOutput Infer(DistillationBatch batch, ObjectiveRequirements requirements)
    {
        ArgumentNullException.ThrowIfNull(batch);
        ArgumentNullException.ThrowIfNull(requirements);
        if (requirements.NeedsTeacherLogits || requirements.NeedsTeacherHiddenStates)
        {
            throw new InvalidOperationException($"The cached teacher ({Reader.Directory}) provides sparse top-k log-probs only, but the objective needs {(requirements.NeedsTeacherLogits ? "full teacher logits" : "teacher hidden states")}. Use a sparse objective (sparse_forward_kl, …) or a local teacher.");
        }

        if (batch.HasTeacherTokens)
        {
            throw new InvalidOperationException($"The cached teacher ({Reader.Directory}) serves same-tokenizer batches only; this batch carries the teacher's own tokenisation (a cross-tokenizer objective).");
        }

        long b = batch.InputIds.shape[0], t = batch.InputIds.shape[1];
        int k = Reader.K;
        var ids = batch.InputIds.cpu().data<long>().ToArray();
        var mask = batch.AttentionMask.cpu().data<long>().ToArray();
        var labels = batch.Labels.cpu().data<long>().ToArray();
        var outIds = new long[b * t * k];
        var outLogProbs = new float[b * t * k];
        var outTail = new float[b * t];
        var uniform = (float)-Math.Log(k);
        for (var i = 0L; i < b * t; i++)
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
            Fill(row, (int)t, k, ids, mask, labels, outIds, outLogProbs, outTail);
        }

        var device = batch.InputIds.device;
        return new TeacherOutput
        {
            TopKIndices = tensor(outIds, [b, t, k]).to(device),
            TopKLogProbs = tensor(outLogProbs, [b, t, k]).to(device),
            TopKLogTailMass = tensor(outTail, [b, t]).to(device),
        };
    }

    private void Fill(int row, int t, int k, long[] ids, long[] mask, long[] labels, long[] outIds, float[] outLogProbs, float[] outTail)
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
                throw new InvalidOperationException($"Batch row {row}: the attention mask has a gap (padding inside the sequence); the cached teacher needs contiguous tokens.");
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

        if (!Reader.TryFindRow(real, scored, out var cacheRow))
        {
            throw new InvalidDataException(
                $"Batch row {row} ({real.Length} tokens, {scored.Count} scored, first ids [{string.Join(", ", real.Take(8))}]) is not in the teacher cache {Reader.Directory} " +
                $"(dataset_hash {Reader.Manifest.DatasetHash}, template '{Reader.Manifest.Template}'). The training data, truncation, template or label mask differ from what was cached.");
        }

        var n = Reader.PositionCount(cacheRow);
        var positions = ArrayPool<int>.Shared.Rent(n);
        var topIds = ArrayPool<int>.Shared.Rent(n * k);
        var logProbs = ArrayPool<float>.Shared.Rent(n * k);
        var tails = ArrayPool<float>.Shared.Rent(n);
        try
        {
            Reader.CopyRow(cacheRow, positions.AsSpan(0, n), topIds.AsSpan(0, n * k), logProbs.AsSpan(0, n * k), tails.AsSpan(0, n));
            for (var j = 0; j < n; j++)
            {
                var at = o + start + positions[j];
                for (var x = 0; x < k; x++)
                {
                    outIds[(at * k) + x] = topIds[(j * k) + x];
                    outLogProbs[(at * k) + x] = logProbs[(j * k) + x];
                }

                outTail[at] = tails[j];
            }
        }
        finally
        {
            ArrayPool<int>.Shared.Return(positions);
            ArrayPool<int>.Shared.Return(topIds);
            ArrayPool<float>.Shared.Return(logProbs);
            ArrayPool<float>.Shared.Return(tails);
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (ownsReader)
        {
            Reader.Dispose();
        }
    }
}
