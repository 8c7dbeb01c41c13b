namespace Distill.Training.Sources;

/// <summary>
/// Where a micro-batch's training sequences come from: the dataset, the student's generations (on-policy, GKD), or a
/// mixture of student, teacher and dataset (ATKD's sample sources). A batch transform: add it to
/// <see cref="DistillationTrainer.BatchTransforms"/>.
/// </summary>
/// <remarks>
/// <para>
/// A generating source reads each row's prompt (the positions before its first scored label, or the whole row when no
/// label is scored), generates the responses batched with a key/value cache, and returns a right-padded batch
/// <c>prompt + response</c> whose labels score only the response (EOS included). Randomness comes only from
/// <see cref="BatchTransformContext"/> (seed, epoch, index), so a resumed run sees the same sequences.
/// </para>
/// <para>Not thread-safe: the trainer calls it from one thread at a time (never prefetched when it reads the student).</para>
/// </remarks>
public interface ISampleSource : IBatchTransform
{
    /// <summary>Gets the source's name (the ATKD name, e.g. <c>mix_token</c>, or <c>on_policy</c>).</summary>
    string Name { get; }

    /// <summary>Gets a snapshot of what the source has done so far in this process (not restored on resume).</summary>
    SampleSourceStatistics Statistics { get; }
}

/// <summary>What a sample source has done: batches seen and generated, rows generated, truncated, dropped or skipped, tokens and time.</summary>
/// <param name="Batches">Micro-batches that passed through the source.</param>
/// <param name="GeneratedBatches">Micro-batches whose responses were generated (the rest kept the dataset's).</param>
/// <param name="GeneratedRows">Rows with a generated response.</param>
/// <param name="TruncatedRows">Generated rows that reached <see cref="SampleSourceOptions.MaxNewTokens"/> without EOS (kept or dropped).</param>
/// <param name="EmptyResponses">Generated rows whose first token was EOS (kept or dropped).</param>
/// <param name="DroppedRows">Generated rows kept in the batch with every label ignored (truncated or empty, per the options).</param>
/// <param name="SkippedPrompts">Rows whose prompt left no room for the response in the context window (<see cref="LongPromptPolicy.Skip"/>).</param>
/// <param name="GeneratedTokens">Generated tokens over all generated rows (EOS included, padding excluded).</param>
/// <param name="GenerationTime">Wall-clock time spent generating.</param>
public sealed record SampleSourceStatistics(
    long Batches,
    long GeneratedBatches,
    long GeneratedRows,
    long TruncatedRows,
    long EmptyResponses,
    long DroppedRows,
    long SkippedPrompts,
    long GeneratedTokens,
    TimeSpan GenerationTime)
{
    /// <summary>Gets the mean number of generated tokens per generated row (0 before any).</summary>
    public double MeanGeneratedLength => GeneratedRows == 0 ? 0 : (double)GeneratedTokens / GeneratedRows;
}
