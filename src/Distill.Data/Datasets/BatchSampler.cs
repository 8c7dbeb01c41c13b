namespace Distill.Data;

/// <summary>
/// Deterministic batch order for exact resume: epoch e visits the permutation drawn from (seed, e), cut into batches,
/// so batch (epoch, index) is the same whatever happened before it.
/// </summary>
public sealed class BatchSampler
{
    private readonly Dictionary<int, int[]> _permutations = [];
    private readonly Lock _gate = new();

    /// <summary>Creates a sampler over <paramref name="datasetSize"/> examples.</summary>
    /// <param name="datasetSize">Number of examples.</param>
    /// <param name="batchSize">Examples per batch.</param>
    /// <param name="seed">The shuffle seed.</param>
    /// <param name="shuffle">Whether to shuffle each epoch (false: dataset order every epoch).</param>
    /// <param name="dropLast">Whether to drop the last incomplete batch.</param>
    public BatchSampler(int datasetSize, int batchSize, int seed, bool shuffle = true, bool dropLast = true)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(datasetSize);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(batchSize);
        DatasetSize = datasetSize;
        BatchSize = batchSize;
        Seed = seed;
        Shuffle = shuffle;
        DropLast = dropLast;
        BatchesPerEpoch = dropLast ? datasetSize / batchSize : (datasetSize + batchSize - 1) / batchSize;
    }

    /// <summary>Gets the number of examples.</summary>
    public int DatasetSize { get; }

    /// <summary>Gets the batch size.</summary>
    public int BatchSize { get; }

    /// <summary>Gets the seed.</summary>
    public int Seed { get; }

    /// <summary>Gets a value indicating whether epochs are shuffled.</summary>
    public bool Shuffle { get; }

    /// <summary>Gets a value indicating whether the last incomplete batch is dropped.</summary>
    public bool DropLast { get; }

    /// <summary>Gets the number of batches in every epoch.</summary>
    public int BatchesPerEpoch { get; }

    /// <summary>Returns the example indices of batch <paramref name="index"/> of <paramref name="epoch"/>.</summary>
    /// <param name="epoch">Zero-based epoch.</param>
    /// <param name="index">Zero-based batch index within the epoch, below <see cref="BatchesPerEpoch"/>.</param>
    /// <returns>The indices (length <see cref="BatchSize"/>, or fewer for a kept last batch).</returns>
    public int[] GetIndices(int epoch, int index)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(epoch);
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, BatchesPerEpoch);
        var order = Order(epoch);
        var start = index * BatchSize;
        return order[start..Math.Min(start + BatchSize, DatasetSize)];
    }

    private int[] Order(int epoch)
    {
        if (!Shuffle)
        {
            return [.. Enumerable.Range(0, DatasetSize)];
        }

        lock (_gate)
        {
            if (!_permutations.TryGetValue(epoch, out var order))
            {
                if (_permutations.Count > 4)
                {
                    _permutations.Clear();
                }

                order = DeterministicRandom.For(Seed, epoch).Permutation(DatasetSize);
                _permutations[epoch] = order;
            }

            return order;
        }
    }
}

/// <summary>
/// A tokenised dataset plus a <see cref="BatchSampler"/>: random access to training batches by (epoch, batch index),
/// which is all a trainer needs to resume exactly (store the epoch and the next batch index in the checkpoint).
/// </summary>
public sealed class DistillationBatchSource : Distill.Training.IBatchSource
{
    /// <summary>Creates a batch source.</summary>
    /// <param name="dataset">The tokenised dataset.</param>
    /// <param name="sampler">The sampler; its dataset size must equal the dataset's.</param>
    /// <param name="paddingSide">Padding side of the batches.</param>
    /// <param name="padToLength">Fixed width of every batch, or null for the longest row.</param>
    public DistillationBatchSource(TokenizedDataset dataset, BatchSampler sampler, PaddingSide paddingSide = PaddingSide.Right, int? padToLength = null)
    {
        ArgumentNullException.ThrowIfNull(dataset);
        ArgumentNullException.ThrowIfNull(sampler);
        if (sampler.DatasetSize != dataset.Count)
        {
            throw new ArgumentException($"The sampler covers {sampler.DatasetSize} examples but the dataset has {dataset.Count}.", nameof(sampler));
        }

        Dataset = dataset;
        Sampler = sampler;
        PaddingSide = paddingSide;
        PadToLength = padToLength;
    }

    /// <summary>Gets the dataset.</summary>
    public TokenizedDataset Dataset { get; }

    /// <summary>Gets the sampler.</summary>
    public BatchSampler Sampler { get; }

    /// <summary>Gets the padding side.</summary>
    public PaddingSide PaddingSide { get; }

    /// <summary>Gets the fixed batch width, or null.</summary>
    public int? PadToLength { get; }

    /// <summary>Gets the number of batches per epoch.</summary>
    public int BatchesPerEpoch => Sampler.BatchesPerEpoch;

    /// <summary>Builds batch <paramref name="index"/> of <paramref name="epoch"/> (same result on every call).</summary>
    /// <param name="epoch">Zero-based epoch.</param>
    /// <param name="index">Zero-based batch index.</param>
    /// <returns>The batch; the caller owns its tensors.</returns>
    public DistillationBatch GetBatch(int epoch, int index) =>
        Dataset.Collate(Sampler.GetIndices(epoch, index), PaddingSide, PadToLength);

    /// <summary>Creates a source from <see cref="DataOptions"/> (batch size, seed, shuffle, drop-last, padding).</summary>
    /// <param name="dataset">The tokenised dataset.</param>
    /// <param name="options">The options.</param>
    /// <returns>The batch source.</returns>
    public static DistillationBatchSource FromOptions(TokenizedDataset dataset, DataOptions options)
    {
        ArgumentNullException.ThrowIfNull(dataset);
        ArgumentNullException.ThrowIfNull(options);
        return new DistillationBatchSource(
            dataset,
            new BatchSampler(dataset.Count, options.BatchSize, options.Seed, options.Shuffle, options.DropLast),
            options.PaddingSide,
            options.PadToMaxLength ? options.MaxLength - 1 : null);
    }
}
