namespace Distill.Data;

/// <summary>One dataset row to cache: the real (unpadded) input ids and the positions whose next token is scored.</summary>
/// <param name="Row">The dataset row index (0-based); rows of one cache are 0 … N − 1 in order.</param>
/// <param name="InputIds">The input ids without padding (what the model reads; labels are aligned with these positions).</param>
/// <param name="ScoredPositions">Ascending positions t in <paramref name="InputIds"/> whose logits are scored (labels[t] ≠ −100).</param>
public sealed record TeacherCacheExample(long Row, IReadOnlyList<int> InputIds, IReadOnlyList<int> ScoredPositions)
{
    /// <summary>Builds the cache examples of a tokenized dataset (student tokenisation, DSKD label alignment).</summary>
    /// <param name="dataset">The dataset.</param>
    /// <returns>One example per dataset row.</returns>
    public static IReadOnlyList<TeacherCacheExample> FromDataset(TokenizedDataset dataset) => FromDataset(dataset, TeacherCacheTokens.Student);

    /// <summary>Builds the cache examples of a tokenized dataset in the student's or the teacher's tokenisation.</summary>
    /// <param name="dataset">The dataset.</param>
    /// <param name="tokens">Which side's tokens the rows hold: <see cref="TeacherCacheTokens.Teacher"/> for cross-tokenizer
    /// objectives (ULD), whose teacher reads its own tokenisation of each example.</param>
    /// <returns>One example per dataset row.</returns>
    /// <exception cref="ArgumentException"><see cref="TeacherCacheTokens.Teacher"/> for a dataset without a teacher tokenizer.</exception>
    public static IReadOnlyList<TeacherCacheExample> FromDataset(TokenizedDataset dataset, TeacherCacheTokens tokens)
    {
        ArgumentNullException.ThrowIfNull(dataset);
        var rows = tokens switch
        {
            TeacherCacheTokens.Student => dataset.StudentExamples,
            TeacherCacheTokens.Teacher => dataset.TeacherExamples
                ?? throw new ArgumentException("TeacherCacheTokens.Teacher needs a dataset tokenized with a teacher tokenizer (TokenizedDataset.Create(..., teacher: ...)).", nameof(dataset)),
            _ => throw new ArgumentOutOfRangeException(nameof(tokens), tokens, "Unknown TeacherCacheTokens value."),
        };
        var result = new TeacherCacheExample[rows.Count];
        for (var i = 0; i < rows.Count; i++)
        {
            var e = rows[i];
            var ids = e.Tokens.Take(e.InputLength).ToArray();
            // labels[t] = tokens[t + 1] for response tokens: scored t = max(promptLength, 1) − 1 … inputLength − 1.
            var first = Math.Max(e.PromptLength, 1) - 1;
            result[i] = new TeacherCacheExample(i, ids, [.. Enumerable.Range(first, Math.Max(0, e.InputLength - first))]);
        }

        return result;
    }
}

/// <summary>Which tokenisation of the training examples a teacher cache's rows hold.</summary>
public enum TeacherCacheTokens
{
    /// <summary>The student's tokens (same-tokenizer objectives: the top-k ids index the student's vocabulary).</summary>
    Student = 0,

    /// <summary>The teacher's own tokens (cross-tokenizer objectives such as <c>uld</c>: the batch carries <c>TeacherInputIds</c>).</summary>
    Teacher = 1,
}

/// <summary>
/// A teacher's top-k for the scored positions of one <see cref="TeacherCacheExample"/>: row-major [n, k] ids and
/// log-probabilities (temperature 1, descending) and the log of the mass outside the top-k, [n].
/// </summary>
/// <param name="Ids">[n·k] vocabulary ids.</param>
/// <param name="LogProbs">[n·k] log-probabilities.</param>
/// <param name="LogTailMass">[n] log(1 − Σ_k p); −inf when the top-k hold all the mass.</param>
public sealed record TopKSequence(int[] Ids, float[] LogProbs, float[] LogTailMass)
{
    /// <summary>Throws unless the arrays have the shapes of <paramref name="example"/> at width <paramref name="k"/>.</summary>
    internal void Check(TeacherCacheExample example, int k, string producer)
    {
        var n = example.ScoredPositions.Count;
        if (Ids.Length != n * k || LogProbs.Length != n * k || LogTailMass.Length != n)
        {
            throw new InvalidDataException(
                $"{producer} returned top-k arrays of lengths ids {Ids.Length}, log-probs {LogProbs.Length}, tail {LogTailMass.Length} for row {example.Row}; expected {n * k}, {n * k}, {n} ({n} scored positions × k = {k}).");
        }
    }
}

/// <summary>Something that computes a teacher's top-k log-probabilities: a local model or a remote server.</summary>
/// <remarks>Implementations may be called from one thread at a time; they return all rows or throw (never a partial result).</remarks>
public interface ITopKProducer
{
    /// <summary>Gets a short description of the teacher (logged, and recorded nowhere else).</summary>
    string Description { get; }

    /// <summary>Computes the top-<paramref name="k"/> of every scored position of every example.</summary>
    /// <param name="examples">The rows, in order.</param>
    /// <param name="k">The number of entries per position.</param>
    /// <param name="cancellationToken">Cancels the work.</param>
    /// <returns>One result per example, in order.</returns>
    Task<IReadOnlyList<TopKSequence>> ProduceAsync(IReadOnlyList<TeacherCacheExample> examples, int k, CancellationToken cancellationToken);
}

/// <summary>What a cache was built from; recorded in the manifest and checked by the reader.</summary>
/// <remarks>The dataset hash and row count are computed by the writer from the examples; the rest is supplied by the caller.</remarks>
public sealed record TeacherCacheIdentity
{
    /// <summary>Gets the teacher's name (e.g. the HF model id or the served model name).</summary>
    public required string Teacher { get; init; }

    /// <summary>Gets a hash of the teacher's configuration (e.g. of its config.json and weights' names), or an empty string.</summary>
    public string TeacherConfigHash { get; init; } = "";

    /// <summary>Gets the tokenizer hash (<see cref="TeacherCacheHashes.Tokenizer"/>).</summary>
    public required string TokenizerHash { get; init; }

    /// <summary>Gets the prompt template's name (e.g. <c>dskd</c>, <c>chatml</c>).</summary>
    public required string Template { get; init; }

    /// <summary>Gets k, the number of entries per position.</summary>
    public required int K { get; init; }

    /// <summary>Gets which tokenisation the rows hold (manifest <c>tokens</c>); <see cref="TeacherCacheTokens.Student"/> by default.</summary>
    /// <remarks>With <see cref="TeacherCacheTokens.Teacher"/>, <see cref="TokenizerHash"/> is the teacher tokenizer's hash.</remarks>
    public TeacherCacheTokens Tokens { get; init; } = TeacherCacheTokens.Student;
}
