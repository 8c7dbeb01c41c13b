namespace Distill.Training.Sources;

/// <summary>
/// ATKD's <c>gt</c> and <c>teacher</c> sources: the dataset's sequences as they are (ground truth, or teacher answers written
/// to a file beforehand). Passes every batch through and counts it; never reads the student, so prefetch stays on.
/// </summary>
public sealed class DatasetSource : ISampleSource
{
    private long batches;

    /// <summary>Creates the source.</summary>
    /// <param name="name">The name in statistics (<c>gt</c> or <c>teacher</c>).</param>
    public DatasetSource(string name = "gt")
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        Name = name;
    }

    /// <inheritdoc />
    public string Name { get; }

    /// <inheritdoc />
    public SampleSourceStatistics Statistics => new(Interlocked.Read(ref batches), 0, 0, 0, 0, 0, 0, 0, TimeSpan.Zero);

    /// <inheritdoc />
    public DistillationBatch Transform(DistillationBatch batch, BatchTransformContext context)
    {
        ArgumentNullException.ThrowIfNull(batch);
        Interlocked.Increment(ref batches);
        return batch;
    }
}
