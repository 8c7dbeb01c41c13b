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
    /// <remarks>Sparse top-k only; the tokenizer identity is the cache's <c>tokenizer_hash</c>.</remarks>
    public TeacherInfo Info => new() { Capabilities = TeacherCapabilities.SparseTopK, TokenizerId = Reader.Manifest.TokenizerHash };

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

        var rows = SparseBatchRows.FromBatch(batch);
        var values = new TopKSequence[rows.Count];
        for (var i = 0; i < rows.Count; i++)
        {
            var e = rows[i].Example;
            if (!Reader.TryFindRow(e.InputIds, e.ScoredPositions, out var cacheRow))
            {
                throw new InvalidDataException(
                    $"Batch row {i} ({e.InputIds.Count} tokens, {e.ScoredPositions.Count} scored, first ids [{string.Join(", ", e.InputIds.Take(8))}]) is not in the teacher cache {Reader.Directory} " +
                    $"(dataset_hash {Reader.Manifest.DatasetHash}, template '{Reader.Manifest.Template}'). The training data, truncation, template or label mask differ from what was cached.");
            }

            values[i] = Reader.ReadRow(cacheRow).Values;
        }

        return SparseBatchRows.ToTeacherOutput(batch, rows, values, Reader.K);
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
