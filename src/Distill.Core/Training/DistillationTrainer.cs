using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using TorchSharp;
using static TorchSharp.torch;

namespace Distill.Training;

/// <summary>
/// Trains a student against a teacher with an <see cref="IDistillationObjective"/>: AdamW with decoupled weight decay and
/// no-decay groups, a warmup + constant/linear/cosine schedule, gradient accumulation normalised by the token count of the
/// whole window, global-norm clipping, optional bf16 compute with float32 master weights, evaluation, atomic checkpoints and
/// exact resume.
/// </summary>
/// <remarks>
/// <para>
/// One optimizer step consumes <see cref="TrainingOptions.GradientAccumulationSteps"/> consecutive micro-batches of the
/// <see cref="IBatchSource"/>. Each micro-batch's summed loss is back-propagated as is; after the window every gradient is
/// divided by <c>N</c>, the sum of the objective's <see cref="ObjectiveResult.Normalizer"/> over the window. By linearity this is
/// exactly DSKD's "for each micro-batch, loss_sum / N_window, no further GA scaling": the step minimises
/// <c>Σ token losses / Σ tokens</c> of the window, not a mean of per-micro-batch means.
/// </para>
/// <para>
/// Micro-batch <c>(epoch, index)</c> is prepared as: <see cref="IBatchSource.GetBatch"/> → <see cref="BatchTransforms"/> →
/// the student's device → <see cref="ITeacher.InferAsync"/> (under <c>no_grad</c>). That batch-preparation stage is where
/// on-policy generation, teacher-generated data, precomputed alignments and cached or remote teacher lookups plug in; with
/// <see cref="TrainingOptions.PrefetchBatches"/> the next micro-batch is prepared on a worker thread while the current one
/// trains. Only student parameters with <c>requires_grad</c> are optimised (LoRA freezes the base), plus the objective's own
/// parameters in their own group at <see cref="TrainingOptions.ObjectiveLearningRate"/>.
/// </para>
/// <para>
/// Every step runs inside one <see cref="DisposeScope"/> and keeps its sums on the device; the loss is read back only on
/// logging steps, plus one boolean per step for the non-finite guard (<see cref="TrainingOptions.OnNonFiniteStep"/>).
/// Training runs on the calling thread (TorchSharp's dispose scopes are thread-static); <see cref="TrainAsync"/> runs it on a
/// dedicated thread. An instance is not thread-safe; <see cref="Train"/> may be called again (e.g. to resume), each call
/// builds a fresh optimizer.
/// </para>
/// </remarks>
public sealed partial class DistillationTrainer
{
    private readonly ICausalLM student;
    private readonly IDistillationObjective objective;
    private readonly ITeacher? teacher;
    private readonly TrainingOptions options;
    private readonly ILogger logger;
    private readonly IModelCheckpointWriter checkpointWriter;

    /// <summary>Creates a trainer and validates the setup.</summary>
    /// <param name="student">The model to train (on the device training runs on).</param>
    /// <param name="objective">The loss; its <see cref="IDistillationObjective.Requirements"/> decide what is computed.</param>
    /// <param name="teacher">The teacher, or <see langword="null"/> for teacher-free objectives (SFT, SeqKD).</param>
    /// <param name="options">Training options (copied; validated here).</param>
    /// <param name="logger">Logger; none by default.</param>
    /// <param name="checkpointWriter">How student weights are stored in checkpoints; <see cref="StateDictCheckpointWriter"/> by default.</param>
    /// <exception cref="ArgumentException">Invalid options, or a setup the objective cannot work with: the objective's
    /// <see cref="IDistillationObjective.Validate"/> message, wrapped (vocabulary, teacher capabilities, ...).</exception>
    public DistillationTrainer(
        ICausalLM student,
        IDistillationObjective objective,
        ITeacher? teacher,
        TrainingOptions options,
        ILogger<DistillationTrainer>? logger = null,
        IModelCheckpointWriter? checkpointWriter = null)
    {
        ArgumentNullException.ThrowIfNull(student);
        ArgumentNullException.ThrowIfNull(objective);
        ArgumentNullException.ThrowIfNull(options);
        options.ThrowIfInvalid();
        this.student = student;
        this.objective = objective;
        this.teacher = teacher;
        this.options = options.Clone();
        this.logger = (ILogger?)logger ?? NullLogger.Instance;
        this.checkpointWriter = checkpointWriter ?? new StateDictCheckpointWriter();
        if (objective.Requirements.NeedsTeacher && teacher is null)
        {
            throw new ArgumentException($"Objective '{objective.Name}' needs a teacher, but none was given.", nameof(teacher));
        }

        if (teacher?.Model is { } teacherModel && ReferenceEquals(teacherModel.Module, student.Module))
        {
            throw new ArgumentException("The teacher and the student are the same module; a frozen teacher would freeze the student too.", nameof(teacher));
        }

        if (objective is IModelAwareObjective { IsInitialized: false } aware && teacher?.Model is { } model)
        {
            // DSKD's projectors are sized from both hidden sizes; create them before the optimizer groups are built.
            aware.Initialize(student, model);
        }

        try
        {
            objective.Validate(new ObjectiveSetup { StudentVocabularySize = student.Config.VocabSize, Teacher = teacher?.Info });
        }
        catch (InvalidOperationException e)
        {
            throw new ArgumentException($"Objective '{objective.Name}' cannot train this setup: {e.Message}", nameof(objective), e);
        }
    }

    /// <summary>Gets or sets the evaluation callback (see <see cref="TrainingOptions.EvaluationStrategy"/>): named metrics of the student.</summary>
    public Func<EvaluationContext, IReadOnlyDictionary<string, double>>? Evaluate { get; set; }

    /// <summary>Gets or sets the progress sink, called on the training thread every <see cref="TrainingOptions.LogEverySteps"/> steps and at the last step.</summary>
    public IProgress<TrainingProgress>? Progress { get; set; }

    /// <summary>
    /// Gets the batch-preparation stage: transforms applied, in order, to every micro-batch between the source and the
    /// teacher (on-policy generation, teacher-generated answers, precomputed alignments, cache keys). Empty by default.
    /// </summary>
    public IList<IBatchTransform> BatchTransforms { get; } = [];

    /// <summary>Gets a copy of the options this trainer uses.</summary>
    public TrainingOptions Options => options.Clone();

    /// <summary>Gets the folder that holds the checkpoints (<c>OutputDirectory/checkpoints</c>).</summary>
    public string CheckpointDirectory => Path.Combine(options.OutputDirectory, "checkpoints");

    /// <summary>Runs <see cref="Train"/> on a dedicated thread.</summary>
    /// <param name="data">The batch source.</param>
    /// <param name="resumeFrom">A checkpoint folder, <c>latest</c>, or <see langword="null"/> for a fresh run.</param>
    /// <param name="cancellationToken">Cancelling saves a checkpoint after the current step and ends the run normally.</param>
    /// <returns>The run's outcome.</returns>
    public Task<TrainingResult> TrainAsync(IBatchSource data, string? resumeFrom = null, CancellationToken cancellationToken = default) =>
        Task.Factory.StartNew(() => Train(data, resumeFrom, cancellationToken), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);

    /// <summary>Trains on the calling thread until the last step or cancellation.</summary>
    /// <param name="data">The batch source.</param>
    /// <param name="resumeFrom">A checkpoint folder, <c>latest</c> (newest under <see cref="CheckpointDirectory"/>), or <see langword="null"/> for a fresh run.</param>
    /// <param name="cancellationToken">Checked after every step: cancelling writes a checkpoint (unless checkpoints are off) and returns <see cref="TrainingStatus.Cancelled"/>.</param>
    /// <returns>The run's outcome.</returns>
    /// <exception cref="ArgumentException">The source has fewer batches than one accumulation window, or a checkpoint does not match this run.</exception>
    /// <exception cref="InvalidOperationException">A batch, transform, teacher output or objective failed (message names the step, epoch and micro-batch).</exception>
    /// <exception cref="NonFiniteLossException">A step's loss or gradient norm was not finite under <see cref="NonFiniteStepPolicy.Stop"/>.</exception>
    public TrainingResult Train(IBatchSource data, string? resumeFrom = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(data);
        var o = options;
        var batchesPerEpoch = data.BatchesPerEpoch;
        var stepsPerEpoch = batchesPerEpoch / o.GradientAccumulationSteps;
        if (stepsPerEpoch < 1)
        {
            throw new ArgumentException($"The batch source has {batchesPerEpoch} batches per epoch, fewer than one accumulation window of {o.GradientAccumulationSteps} micro-batches.", nameof(data));
        }

        var totalSteps = o.MaxSteps ?? (stepsPerEpoch * o.Epochs);
        var schedule = new LearningRateSchedule(o.Schedule, totalSteps, o.WarmupRatio, o.MinLearningRate);
        if (o.Precision == TrainingPrecision.BFloat16)
        {
            student.Module.to(ScalarType.BFloat16);
            teacher?.Model?.Module.to(ScalarType.BFloat16);
            objective.Module?.to(ScalarType.BFloat16);
        }

        var groups = ParameterGroups.Build(student.Module, objective.Module, o);
        if (groups.Count == 0)
        {
            throw new ArgumentException("Nothing to train: no student or objective parameter requires grad.");
        }

        var device = DeviceOf(student.Module);
        using var masters = MasterWeights.CreateIfNeeded(groups);
        using var optimizer = CreateOptimizer(groups, masters);
        var store = new CheckpointStore(CheckpointDirectory, logger);
        store.CleanTemporaryFolders();

        var position = new Position(0, 0, 0);
        long startTokens = 0;
        if (resumeFrom is not null)
        {
            var path = store.Resolve(resumeFrom);
            (position, startTokens) = LoadCheckpoint(path, optimizer, masters, groups, totalSteps, stepsPerEpoch, batchesPerEpoch);
            Log.Resumed(logger, path, position.Step, position.Epoch, position.StepInEpoch * o.GradientAccumulationSteps);
        }
        else
        {
            torch.manual_seed(o.Seed);
        }

        student.Module.train();
        objective.Module?.train();
        Log.TrainingStarted(
            logger, objective.Name, totalSteps, stepsPerEpoch, o.GradientAccumulationSteps,
            groups.Sum(g => g.Parameters.Sum(p => p.Parameter.numel())), groups.Count, o.Precision.ToString(), device.ToString());

        using var pipeline = new BatchPipeline(data, [.. BatchTransforms], teacher, objective.Requirements, CheckBatch, device, o.Seed, o.PrefetchBatches, stepsPerEpoch * o.GradientAccumulationSteps, (long)totalSteps * o.GradientAccumulationSteps);
        Log.PipelineStarted(logger, BatchTransforms.Count, teacher?.GetType().Name ?? "none", pipeline.Prefetches);
        var runner = new TrainingStep(student, objective, teacher, o, groups, masters, optimizer, device, logger);
        using var tokenCounter = tensor(startTokens, ScalarType.Int64, device);
        using var metrics = new TrainingMetricsWriter(o.OutputDirectory, o.TensorBoard);
        var evaluations = new List<(int, IReadOnlyDictionary<string, double>)>();
        var clock = Stopwatch.StartNew();
        var startStep = position.Step;
        var lastLoss = double.NaN;
        string? lastCheckpoint = null;
        var lastSavedStep = -1;
        (string Path, double Value)? best = null;
        var evaluateEvery = EvaluationInterval(totalSteps);

        while (position.Step < totalSteps && !cancellationToken.IsCancellationRequested)
        {
            var step = position.Step; // 0-based index of the step about to run
            var done = step + 1;
            var read = o.LogEverySteps > 0 ? done % o.LogEverySteps == 0 || done == totalSteps : done == totalSteps;
            var lrs = groups.Select(g => schedule.LearningRate(g.BaseLearningRate, step)).ToArray();
            var stats = runner.Run(pipeline, step, position.Epoch, position.StepInEpoch * o.GradientAccumulationSteps, lrs, tokenCounter, read, cancellationToken);
            var epochEnd = position.StepInEpoch + 1 == stepsPerEpoch;
            var next = epochEnd ? new Position(done, position.Epoch + 1, 0) : new Position(done, position.Epoch, position.StepInEpoch + 1);
            if (read)
            {
                lastLoss = stats.Loss;
                Report(metrics, stats, done, totalSteps, startStep, position.Epoch, lrs[0], tokenCounter.item<long>(), startTokens, clock.Elapsed);
            }

            var evaluate = Evaluate is not null && o.EvaluationStrategy != EvaluationStrategy.No
                && ((evaluateEvery is int every && done % every == 0) || (evaluateEvery is null && epochEnd) || done == totalSteps);
            IReadOnlyDictionary<string, double>? evalMetrics = null;
            if (evaluate)
            {
                evalMetrics = RunEvaluation(done, position.Epoch, epochEnd, cancellationToken);
                evaluations.Add((done, evalMetrics));
                metrics.Write("eval", done, position.Epoch, evalMetrics);
            }

            if (o.SaveCheckpoints && (evaluate || epochEnd || done == totalSteps
                || (o.SaveEverySteps is int saveEvery && done % saveEvery == 0)
                || cancellationToken.IsCancellationRequested))
            {
                lastCheckpoint = SaveCheckpoint(store, next, tokenCounter.item<long>(), optimizer, masters, groups, schedule, lrs, evalMetrics, totalSteps, stepsPerEpoch, batchesPerEpoch);
                lastSavedStep = done;
                best = store.Prune(o.KeepLastCheckpoints, o.BestMetric is null ? 0 : o.KeepBestCheckpoints, o.GreaterIsBetter);
            }

            position = next;
        }

        var cancelled = position.Step < totalSteps;
        if (cancelled)
        {
            if (o.SaveCheckpoints && lastSavedStep != position.Step && position.Step > startStep)
            {
                var lrs = groups.Select(g => schedule.LearningRate(g.BaseLearningRate, Math.Max(position.Step - 1, 0))).ToArray();
                lastCheckpoint = SaveCheckpoint(store, position, tokenCounter.item<long>(), optimizer, masters, groups, schedule, lrs, null, totalSteps, stepsPerEpoch, batchesPerEpoch);
                best = store.Prune(o.KeepLastCheckpoints, o.BestMetric is null ? 0 : o.KeepBestCheckpoints, o.GreaterIsBetter);
            }

            Log.Cancelled(logger, position.Step, lastCheckpoint);
        }
        else
        {
            if (o.LoadBestModelAtEnd && best is { } b)
            {
                LoadModelWeights(b.Path);
                Log.BestModelLoaded(logger, b.Path, o.BestMetric!, b.Value);
            }

            Log.TrainingFinished(logger, position.Step, lastLoss, best?.Path);
        }

        return new TrainingResult(
            cancelled ? TrainingStatus.Cancelled : TrainingStatus.Completed,
            position.Step,
            lastLoss,
            lastCheckpoint,
            best?.Path,
            best?.Value,
            evaluations);
    }

    /// <summary>The evaluation interval in steps, or <see langword="null"/> for epoch ends (see <see cref="EvaluationStrategy"/>).</summary>
    internal int? EvaluationInterval(int totalSteps) => options.EvaluationStrategy switch
    {
        EvaluationStrategy.Steps => options.EvaluateEverySteps,
        EvaluationStrategy.Epoch => null,
        EvaluationStrategy.No => null,
        _ => options.EvaluateEverySteps ?? (options.MaxSteps is null ? null : Math.Max(1, (totalSteps + 9) / 10)),
    };

    /// <summary>Where the next step starts: steps done, epoch, step within the epoch.</summary>
    internal readonly record struct Position(int Step, int Epoch, int StepInEpoch);
}
