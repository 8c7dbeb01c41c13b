using static TorchSharp.torch;

namespace Distill.Training;

/// <summary>
/// The batch-preparation stage between the <see cref="IBatchSource"/> and the teacher: it may replace the responses
/// (on-policy generation, teacher-generated answers), add precomputed metadata (alignments, cache keys) or anything else a
/// later stage reads, before the teacher scores the batch and the student trains on it.
/// </summary>
/// <remarks>
/// <para>
/// The trainer prepares micro-batch <c>(epoch, index)</c> as: <see cref="IBatchSource.GetBatch"/> → every transform in
/// order → move to the student's device → teacher <see cref="ITeacher.InferAsync"/>. With
/// <see cref="TrainingOptions.PrefetchBatches"/> on, the next micro-batch is prepared on a worker thread while the current
/// one trains, unless a transform sets <see cref="ReadsStudent"/>.
/// </para>
/// <para>
/// Exact resume: a transform must be a pure function of the batch and the <see cref="BatchTransformContext"/>. Draw random
/// numbers only from <see cref="BatchTransformContext.CreateGenerator"/> / <see cref="BatchTransformContext.CreateRandom"/>,
/// which are seeded by (seed, epoch, index), never from torch's global generator (the student's dropout uses it, and a
/// prefetched transform runs on another thread).
/// </para>
/// <para>
/// Ownership: the transform may return its input or a new batch; it may reuse the input's tensors in the new batch. The
/// trainer runs the whole preparation inside one dispose scope and keeps only the tensors of the batch that comes out, so a
/// transform never disposes anything itself.
/// </para>
/// </remarks>
public interface IBatchTransform
{
    /// <summary>
    /// Gets a value indicating whether the transform reads the student's current weights (on-policy generation): such a
    /// batch is prepared only after the previous optimizer step has finished, never prefetched.
    /// </summary>
    bool ReadsStudent => false;

    /// <summary>Transforms one micro-batch.</summary>
    /// <param name="batch">The batch from the source or the previous transform (tensors on the source's device).</param>
    /// <param name="context">Where the batch sits in the run, and its deterministic random streams.</param>
    /// <returns>The batch to hand on (the input itself or a new one).</returns>
    DistillationBatch Transform(DistillationBatch batch, BatchTransformContext context);
}

/// <summary>Where a micro-batch sits in the run, for <see cref="IBatchTransform.Transform"/>.</summary>
/// <param name="Seed">The run's seed (<see cref="TrainingOptions.Seed"/>).</param>
/// <param name="Epoch">The 0-based epoch.</param>
/// <param name="Index">The 0-based micro-batch index within the epoch.</param>
/// <param name="Device">The device training runs on (the student's).</param>
/// <param name="CancellationToken">The run's cancellation token.</param>
public readonly record struct BatchTransformContext(int Seed, int Epoch, int Index, Device Device, CancellationToken CancellationToken)
{
    /// <summary>Gets a 64-bit seed that depends only on (<see cref="Seed"/>, <see cref="Epoch"/>, <see cref="Index"/>) and <paramref name="stream"/>.</summary>
    /// <param name="stream">Separates independent random streams of one batch (e.g. 0 = coin flips, 1 = sampling).</param>
    /// <returns>The derived seed (SplitMix64 of the four values).</returns>
    public long DerivedSeed(int stream = 0)
    {
        var x = Mix((ulong)(uint)Seed);
        x = Mix(x ^ (ulong)(uint)Epoch);
        x = Mix(x ^ (ulong)(uint)Index);
        x = Mix(x ^ (ulong)(uint)stream);
        return (long)(x >> 1);
    }

    /// <summary>Creates a torch CPU generator seeded by <see cref="DerivedSeed"/> (for sampling with torch).</summary>
    /// <param name="stream">The stream id.</param>
    /// <returns>A new generator owned by the caller.</returns>
    public Generator CreateGenerator(int stream = 0) => new((ulong)DerivedSeed(stream), CPU);

    /// <summary>Creates a <see cref="Random"/> seeded by <see cref="DerivedSeed"/> (for coin flips on the host).</summary>
    /// <param name="stream">The stream id.</param>
    /// <returns>A new generator.</returns>
    public Random CreateRandom(int stream = 0) => new(unchecked((int)DerivedSeed(stream) ^ (int)(DerivedSeed(stream) >> 32)));

    private static ulong Mix(ulong z)
    {
        z += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
