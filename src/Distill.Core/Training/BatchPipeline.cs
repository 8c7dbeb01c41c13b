using TorchSharp;
using static TorchSharp.torch;

namespace Distill.Training;

/// <summary>
/// Prepares micro-batches for the step: source → batch transforms → device → checks → teacher, with one micro-batch of
/// prefetch on a worker thread (the next one is prepared while the current one trains).
/// </summary>
/// <remarks>
/// Deterministic: a prepared batch depends only on (epoch, index), the transforms (seeded by (seed, epoch, index)) and
/// the teacher, never on when it was prepared, so a prefetched run, a synchronous run and a resumed run see the same
/// batches. A prepared batch's tensors belong to no dispose scope; <see cref="PreparedBatch.Dispose"/> frees them.
/// </remarks>
internal sealed class BatchPipeline : IDisposable
{
    private readonly IBatchSource source;
    private readonly IReadOnlyList<IBatchTransform> transforms;
    private readonly ITeacher? teacher;
    private readonly ObjectiveRequirements requirements;
    private readonly Action<DistillationBatch, int, int> check;
    private readonly Device device;
    private readonly int seed;
    private readonly bool prefetch;
    private readonly int threads;
    private readonly int usablePerEpoch;
    private readonly long totalMicroBatches;
    private (int Epoch, int Index, Task<PreparedBatch> Task)? pending;

    public BatchPipeline(
        IBatchSource source,
        IReadOnlyList<IBatchTransform> transforms,
        ITeacher? teacher,
        ObjectiveRequirements requirements,
        Action<DistillationBatch, int, int> check,
        Device device,
        int seed,
        bool prefetch,
        int usablePerEpoch,
        long totalMicroBatches)
    {
        this.usablePerEpoch = usablePerEpoch;
        this.totalMicroBatches = totalMicroBatches;
        this.source = source;
        this.transforms = transforms;
        this.teacher = requirements.NeedsTeacher ? teacher : null;
        this.requirements = requirements;
        this.check = check;
        this.device = device;
        this.seed = seed;
        this.prefetch = prefetch && !transforms.Any(t => t.ReadsStudent);
        threads = torch.get_num_threads();
    }

    /// <summary>Gets a value indicating whether batches are prepared ahead on a worker thread.</summary>
    public bool Prefetches => prefetch;

    /// <summary>
    /// Returns micro-batch (<paramref name="epoch"/>, <paramref name="index"/>), from the prefetch when it is the pending one,
    /// and starts preparing its successor in the run (the next index, or the first of the next epoch) on a worker thread.
    /// </summary>
    public PreparedBatch Take(int epoch, int index, CancellationToken cancellationToken)
    {
        PreparedBatch prepared;
        if (pending is { } p && p.Epoch == epoch && p.Index == index)
        {
            pending = null;
            prepared = p.Task.GetAwaiter().GetResult();
        }
        else
        {
            Dispose();
            prepared = Prepare(epoch, index, cancellationToken).GetAwaiter().GetResult();
        }

        var next = ((long)epoch * usablePerEpoch) + index + 1;
        if (prefetch && next < totalMicroBatches && !cancellationToken.IsCancellationRequested)
        {
            Prefetch((int)(next / usablePerEpoch), (int)(next % usablePerEpoch), cancellationToken);
        }

        return prepared;
    }

    private void Prefetch(int epoch, int index, CancellationToken cancellationToken)
    {
        var task = Task.Factory.StartNew(
            () =>
            {
                if (torch.get_num_threads() != threads)
                {
                    torch.set_num_threads(threads); // intra-op threads are per calling thread under OpenMP
                }

                return Prepare(epoch, index, cancellationToken);
            },
            CancellationToken.None,
            TaskCreationOptions.LongRunning,
            TaskScheduler.Default).Unwrap();
        pending = (epoch, index, task);
    }

    public void Dispose()
    {
        if (pending is { } p)
        {
            pending = null;
            Discard(p.Task);
        }
    }

    private static void Discard(Task<PreparedBatch> task)
    {
        try
        {
            task.GetAwaiter().GetResult().Dispose();
        }
        catch (Exception)
        {
            // A prefetched batch nobody asked for: its failure is not the run's (the batch will be prepared again if needed).
        }
    }

    private async Task<PreparedBatch> Prepare(int epoch, int index, CancellationToken cancellationToken)
    {
        DistillationBatch batch;
        using (var scope = NewDisposeScope())
        {
            var current = source.GetBatch(epoch, index);
            var context = new BatchTransformContext(seed, epoch, index, device, cancellationToken);
            foreach (var transform in transforms)
            {
                current = transform.Transform(current, context)
                    ?? throw new InvalidOperationException($"Batch transform {transform.GetType().Name} returned null for batch {index} of epoch {epoch}.");
            }

            batch = current.To(device);
            check(batch, epoch, index);
            foreach (var t in Tensors(batch))
            {
                t.DetachFromDisposeScope(); // the rest of the preparation (source batch, intermediates) is freed here
            }
        }

        if (teacher is null)
        {
            return new PreparedBatch(batch, null);
        }

        try
        {
            Task<TeacherOutput> task;
            TeacherOutput? output = null;
            using (var scope = NewDisposeScope())
            using (no_grad())
            {
                // A local teacher completes synchronously: its intermediates are freed with this scope, its outputs kept.
                task = teacher.InferAsync(batch, requirements, cancellationToken);
                if (task.IsCompleted)
                {
                    output = task.GetAwaiter().GetResult();
                    Keep(output);
                }
            }

            if (output is null)
            {
                // An I/O-bound teacher: its tensors are created after its awaits, in no scope of ours.
                output = await task.ConfigureAwait(false);
                Keep(output);
            }

            return new PreparedBatch(batch, output);
        }
        catch
        {
            batch.Dispose();
            throw;
        }
    }

    private void Keep(TeacherOutput? output)
    {
        if (output is null)
        {
            throw new InvalidOperationException($"Teacher {teacher!.GetType().Name} returned no output.");
        }

        foreach (var t in Tensors(output))
        {
            t.DetachFromDisposeScope();
        }
    }

    private static IEnumerable<Tensor> Tensors(DistillationBatch b) =>
        new[] { b.InputIds, b.AttentionMask, b.Labels, b.PositionIds, b.TeacherInputIds, b.TeacherAttentionMask, b.TeacherLabels, b.TeacherPositionIds }
            .OfType<Tensor>();

    internal static IEnumerable<Tensor> Tensors(TeacherOutput o) =>
        new[] { o.Logits, o.HiddenStates, o.TopKLogProbs, o.TopKIndices, o.TopKLogTailMass }.OfType<Tensor>();
}

/// <summary>A micro-batch ready for the step: the batch on the training device and the teacher's output for it.</summary>
internal sealed class PreparedBatch(DistillationBatch batch, TeacherOutput? teacher) : IDisposable
{
    public DistillationBatch Batch { get; } = batch;

    public TeacherOutput? Teacher { get; } = teacher;

    public void Dispose()
    {
        Batch.Dispose();
        if (Teacher is not null)
        {
            foreach (var t in BatchPipeline.Tensors(Teacher))
            {
                t.Dispose();
            }
        }
    }
}
