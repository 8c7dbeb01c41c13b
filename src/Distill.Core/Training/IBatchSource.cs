namespace Distill.Training;

/// <summary>
/// Where the trainer's micro-batches come from: a fixed number of batches per epoch, addressable by (epoch, index), in an
/// order that depends only on the source's seed and the epoch. Random access is what makes a resumed run see exactly the
/// batches an uninterrupted run would have seen.
/// </summary>
/// <remarks>
/// <see cref="GetBatch"/> must return the same content for the same (epoch, index) every time, in any process (shuffle with a
/// generator seeded from (seed, epoch), never from a shared running generator). The trainer disposes each batch it receives.
/// Implementations need not be thread-safe: the trainer calls them one call at a time, but with
/// <see cref="TrainingOptions.PrefetchBatches"/> from a worker thread (the next batch is prepared while the current one trains).
/// Batch transforms (<see cref="IBatchTransform"/>) run after the source, before the teacher.
/// </remarks>
public interface IBatchSource
{
    /// <summary>Gets the number of micro-batches in one epoch (incomplete trailing batches already dropped or kept by the source).</summary>
    int BatchesPerEpoch { get; }

    /// <summary>Returns micro-batch <paramref name="index"/> (0-based) of epoch <paramref name="epoch"/> (0-based).</summary>
    /// <param name="epoch">The 0-based epoch; determines the shuffle.</param>
    /// <param name="index">The 0-based position within the epoch, below <see cref="BatchesPerEpoch"/>.</param>
    /// <returns>A new batch owned by the caller (on any device; the trainer moves it to the student's device).</returns>
    DistillationBatch GetBatch(int epoch, int index);
}
