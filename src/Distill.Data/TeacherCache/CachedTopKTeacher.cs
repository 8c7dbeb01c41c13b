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
    /// <remarks>
    /// Returns sparse top-k only: an objective that needs full logits and does not accept sparse targets, or needs hidden
    /// states, cannot use a cache. A cache of teacher tokens (<see cref="TeacherCacheTokens.Teacher"/>) serves
    /// cross-tokenizer objectives on the batch's teacher side ([B, T_teacher, K]).
    /// </remarks>
    public TeacherOutput Infer(DistillationBatch batch, ObjectiveRequirements requirements)
    {
        ArgumentNullException.ThrowIfNull(batch);
        ArgumentNullException.ThrowIfNull(requirements);
        CheckRequirements(requirements, $"The cached teacher ({Reader.Directory})");
        var side = Reader.Manifest.Tokens;
        if (requirements.RequiresTeacherTokens != (side == TeacherCacheTokens.Teacher))
        {
            throw new InvalidOperationException(
                $"The cached teacher ({Reader.Directory}) holds rows in the {TeacherCacheReader.TokensName(side)}'s tokenisation (manifest tokens = {TeacherCacheReader.TokensName(side)}), but the objective reads {(requirements.RequiresTeacherTokens ? "the teacher's own tokens (a cross-tokenizer objective)" : "student tokens (a same-tokenizer objective)")}. " +
                $"Build the cache with {nameof(TeacherCacheIdentity)}.{nameof(TeacherCacheIdentity.Tokens)} = {nameof(TeacherCacheTokens)}.{(requirements.RequiresTeacherTokens ? nameof(TeacherCacheTokens.Teacher) : nameof(TeacherCacheTokens.Student))}.");
        }

        var rows = SparseBatchRows.FromBatch(batch, side);
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

        return SparseBatchRows.ToTeacherOutput(batch, side, rows, values, Reader.K);
    }

    /// <summary>Throws unless sparse top-k targets can serve <paramref name="requirements"/> (shared by the cache and remote teachers).</summary>
    /// <param name="requirements">What the objective needs.</param>
    /// <param name="who">The teacher, for the message.</param>
    internal static void CheckRequirements(ObjectiveRequirements requirements, string who)
    {
        if ((requirements.NeedsTeacherLogits && !requirements.AcceptsSparseTopK) || requirements.NeedsTeacherHiddenStates)
        {
            throw new InvalidOperationException($"{who} provides sparse top-k log-probs only, but the objective needs {(requirements.NeedsTeacherHiddenStates ? "teacher hidden states" : "full teacher logits")}. Use an objective that accepts sparse targets (sparse_forward_kl, sparse_reverse_kl, sparse_jsd, sparse_tvd, uld) or a local teacher.");
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
