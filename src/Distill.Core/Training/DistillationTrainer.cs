using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using TorchSharp;
using TorchSharp.Modules;
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
/// The teacher (if the objective needs one) runs under <c>no_grad</c>; a <see cref="LocalModelTeacher"/> is frozen and in eval
/// mode. Only student parameters with <c>requires_grad</c> are optimised (LoRA freezes the base), plus the objective's own
/// parameters in their own group at <see cref="TrainingOptions.ObjectiveLearningRate"/>.
/// </para>
/// <para>
/// Every step runs inside one <see cref="DisposeScope"/>; the loss is read back only on logging steps. Training runs on the
/// calling thread (TorchSharp's dispose scopes are thread-static); <see cref="TrainAsync"/> runs it on a dedicated thread.
/// An instance is not thread-safe; <see cref="Train"/> may be called again (e.g. to resume), each call builds a fresh optimizer.
/// </para>
/// </remarks>
public sealed class DistillationTrainer
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
    /// <exception cref="ArgumentException">Invalid options, or a setup the objective cannot work with (message says which and why).</exception>
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
        if (objective is IModelAwareObjective { IsInitialized: false } aware && teacher is LocalModelTeacher local)
        {
            // DSKD's projectors are sized from both hidden sizes; create them before the optimizer groups are built.
            aware.Initialize(student, local.Model);
        }

        ValidateSetup();
    }

    /// <summary>Gets or sets the evaluation callback (every <see cref="TrainingOptions.EvaluateEverySteps"/> steps and at epoch ends): named metrics of the student.</summary>
    public Func<EvaluationContext, IReadOnlyDictionary<string, double>>? Evaluate { get; set; }

    /// <summary>Gets or sets the progress sink, called on the training thread every <see cref="TrainingOptions.LogEverySteps"/> steps and at the last step.</summary>
    public IProgress<TrainingProgress>? Progress { get; set; }

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
    /// <exception cref="InvalidOperationException">A batch or teacher output does not fit the objective (message names the batch and field).</exception>
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
            CastForBFloat16();
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

        var position = new Position(0, 0, 0, 0);
        if (resumeFrom is not null)
        {
            var path = store.Resolve(resumeFrom);
            position = LoadCheckpoint(path, optimizer, masters, groups, totalSteps, stepsPerEpoch, batchesPerEpoch);
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

        using var metrics = new TrainingMetricsWriter(o.OutputDirectory, o.TensorBoard);
        var evaluations = new List<(int, IReadOnlyDictionary<string, double>)>();
        var clock = Stopwatch.StartNew();
        var startStep = position.Step;
        long tokensThisProcess = 0;
        var lastLoss = double.NaN;
        string? lastCheckpoint = null;
        var lastSavedStep = -1;
        (string Path, double Value)? best = null;

        while (position.Step < totalSteps)
        {
            if (cancellationToken.IsCancellationRequested)
            {
                break;
            }

            var step = position.Step; // 0-based index of the step about to run
            var read = o.LogEverySteps > 0 ? (step + 1) % o.LogEverySteps == 0 || step + 1 == totalSteps : step + 1 == totalSteps;
            var lrs = groups.Select(g => schedule.LearningRate(g.BaseLearningRate, step)).ToArray();
            var stats = RunStep(data, position, groups, masters, optimizer, lrs, device, read);

            tokensThisProcess += stats.Tokens;
            var stepInEpoch = position.StepInEpoch + 1;
            var epochEnd = stepInEpoch == stepsPerEpoch;
            var next = epochEnd
                ? new Position(step + 1, position.Epoch + 1, 0, position.Tokens + stats.Tokens)
                : new Position(step + 1, position.Epoch, stepInEpoch, position.Tokens + stats.Tokens);
            var done = step + 1;

            if (read)
            {
                lastLoss = stats.Loss;
                var elapsed = clock.Elapsed;
                var tps = tokensThisProcess / Math.Max(elapsed.TotalSeconds, 1e-9);
                var eta = TimeSpan.FromSeconds(elapsed.TotalSeconds / Math.Max(done - startStep, 1) * (totalSteps - done));
                var lr = lrs[0];
                var values = new Dictionary<string, double>(StringComparer.Ordinal)
                {
                    ["loss"] = stats.Loss,
                    ["lr"] = lr,
                    ["grad_norm"] = stats.GradNorm,
                    ["tokens"] = next.Tokens,
                    ["tokens_per_s"] = tps,
                };
                foreach (var (k, v) in stats.Parts)
                {
                    values[k] = v;
                }

                metrics.Write("train", done, position.Epoch, values);
                if (!double.IsFinite(stats.Loss))
                {
                    Log.NonFiniteLoss(logger, stats.Loss, done);
                }

                Log.StepCompleted(logger, done, totalSteps, position.Epoch, stats.Loss, lr, stats.GradNorm, tps, eta);
                Progress?.Report(new TrainingProgress(done, totalSteps, position.Epoch, stats.Loss, stats.Parts, lr, stats.GradNorm, next.Tokens, tps, elapsed, eta));
            }

            var evaluate = Evaluate is not null
                && ((o.EvaluateEverySteps is int every && done % every == 0) || (epochEnd && o.EvaluateAtEpochEnd));
            IReadOnlyDictionary<string, double>? evalMetrics = null;
            if (evaluate)
            {
                evalMetrics = RunEvaluation(done, position.Epoch, epochEnd, cancellationToken);
                evaluations.Add((done, evalMetrics));
                metrics.Write("eval", done, position.Epoch, evalMetrics);
            }

            var save = o.SaveCheckpoints && (evaluate || epochEnd || done == totalSteps
                || (o.SaveEverySteps is int saveEvery && done % saveEvery == 0)
                || cancellationToken.IsCancellationRequested);
            if (save)
            {
                lastCheckpoint = SaveCheckpoint(store, next, optimizer, masters, groups, schedule, lrs, evalMetrics, totalSteps, stepsPerEpoch, batchesPerEpoch);
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
                lastCheckpoint = SaveCheckpoint(store, position, optimizer, masters, groups, schedule, lrs, null, totalSteps, stepsPerEpoch, batchesPerEpoch);
                best = store.Prune(o.KeepLastCheckpoints, o.BestMetric is null ? 0 : o.KeepBestCheckpoints, o.GreaterIsBetter);
            }

            Log.Cancelled(logger, position.Step, lastCheckpoint);
        }
        else
        {
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

    /// <summary>
    /// Runs one optimizer step (forward/backward over the accumulation window, normalisation, clipping, AdamW) inside one dispose
    /// scope. Internal for tests: with <paramref name="applyUpdate"/> false it stops after normalising the gradients.
    /// </summary>
    internal StepStats RunStep(
        IBatchSource data,
        Position position,
        IReadOnlyList<ParameterGroupSpec> groups,
        MasterWeights? masters,
        torch.optim.Optimizer? optimizer,
        double[] learningRates,
        Device device,
        bool readBack,
        bool applyUpdate = true)
    {
        using var scope = NewDisposeScope();
        var o = options;
        var req = objective.Requirements;
        var trainable = groups.SelectMany(g => g.Parameters.Select(p => p.Parameter)).ToList();
        foreach (var p in trainable)
        {
            p.grad = null; // PyTorch's zero_grad(set_to_none=True)
        }

        long tokens = 0;
        double normaliser = 0;
        var lossSum = zeros(1, dtype: ScalarType.Float32, device: device);
        var parts = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        for (var k = 0; k < o.GradientAccumulationSteps; k++)
        {
            var index = (position.StepInEpoch * o.GradientAccumulationSteps) + k;
            using var micro = NewDisposeScope();
            using var source = data.GetBatch(position.Epoch, index);
            var batch = source.To(device);
            CheckBatch(batch, position.Epoch, index);

            TeacherOutput? teacherOut = null;
            if (req.NeedsTeacher)
            {
                using (no_grad())
                {
                    teacherOut = teacher!.Infer(batch, req);
                }

                CheckTeacherOutput(teacherOut, position.Epoch, index);
            }

            var studentOut = student.Forward(new CausalLMInput
            {
                InputIds = batch.InputIds,
                AttentionMask = batch.AttentionMask,
                PositionIds = batch.PositionIds,
                ComputeLogits = req.NeedsStudentLogits,
                ReturnHiddenStates = req.NeedsStudentHiddenStates,
            });
            if (req.RequiresSameVocabulary && teacherOut?.Logits is { } tl && studentOut.Logits is { } sl && tl.shape[^1] != sl.shape[^1])
            {
                throw new InvalidOperationException($"Objective '{objective.Name}' needs one vocabulary, but the student's logits have {sl.shape[^1]} entries and the teacher's {tl.shape[^1]} (batch {index} of epoch {position.Epoch}).");
            }

            var result = objective.Compute(new ObjectiveContext
            {
                Batch = batch,
                Student = studentOut,
                Teacher = teacherOut,
                StudentModel = student,
                TeacherModel = (teacher as LocalModelTeacher)?.Model,
            });
            if (result.LossSum.numel() != 1)
            {
                throw new InvalidOperationException($"Objective '{objective.Name}' returned a loss of shape [{string.Join(", ", result.LossSum.shape)}]; it must be a scalar sum.");
            }

            result.LossSum.backward();
            normaliser += result.Normalizer.item<float>();
            tokens += result.ScoredTokens.item<long>();
            using (no_grad())
            {
                lossSum.add_(result.LossSum.detach().to(ScalarType.Float32).reshape(1));
                foreach (var (name, value) in result.Metrics)
                {
                    var v = value.detach().to(ScalarType.Float32).reshape(1);
                    if (parts.TryGetValue(name, out var acc))
                    {
                        acc.add_(v);
                    }
                    else
                    {
                        parts[name] = v.clone().MoveToOuterDisposeScope();
                    }
                }
            }
        }

        // Normalise by the token count of the whole window (DSKD); ClampMin(1): an all-masked window gives zero gradients, not NaN.
        var scale = 1.0 / Math.Max(normaliser, 1.0);
        var targets = masters is null ? trainable : masters.Masters;
        using (no_grad())
        {
            if (masters is null)
            {
                foreach (var p in trainable)
                {
                    p.grad?.mul_(scale);
                }
            }
            else
            {
                masters.LoadGradients(scale);
            }
        }

        var withGrad = targets.Where(p => p.grad is not null).ToList();
        var gradNorm = withGrad.Count == 0 ? 0.0 : torch.nn.utils.clip_grad_norm_(withGrad, o.MaxGradNorm ?? double.PositiveInfinity);

        if (applyUpdate)
        {
            var pg = optimizer!.ParamGroups.ToList();
            for (var i = 0; i < pg.Count; i++)
            {
                pg[i].LearningRate = learningRates[i];
            }

            optimizer.step();
            masters?.CopyToModel();
        }

        var loss = double.NaN;
        var partValues = new Dictionary<string, double>(StringComparer.Ordinal);
        if (readBack)
        {
            loss = lossSum.item<float>() * scale;
            foreach (var (name, value) in parts)
            {
                partValues[name] = value.item<float>() * scale;
            }
        }

        return new StepStats(loss, partValues, gradNorm, tokens);
    }

    private IReadOnlyDictionary<string, double> RunEvaluation(int step, int epoch, bool epochEnd, CancellationToken cancellationToken)
    {
        student.Module.eval();
        try
        {
            using var noGrad = no_grad();
            using var scope = NewDisposeScope();
            var result = Evaluate!(new EvaluationContext(step, epoch, epochEnd, student, cancellationToken));
            Log.Evaluated(logger, step, string.Join(", ", result.Select(kv => string.Create(CultureInfo.InvariantCulture, $"{kv.Key}={kv.Value:G6}"))));
            if (options.BestMetric is { } m && !result.ContainsKey(m))
            {
                throw new InvalidOperationException($"The evaluation callback returned no '{m}' (TrainingOptions.BestMetric); it returned: {string.Join(", ", result.Keys)}.");
            }

            return new Dictionary<string, double>(result, StringComparer.Ordinal);
        }
        finally
        {
            student.Module.train();
        }
    }

    private void ValidateSetup()
    {
        var req = objective.Requirements;
        if (req.NeedsTeacher && teacher is null)
        {
            throw new ArgumentException($"Objective '{objective.Name}' needs a teacher, but none was given.", "teacher");
        }

        if (teacher is LocalModelTeacher local)
        {
            if (ReferenceEquals(local.Model.Module, student.Module))
            {
                throw new ArgumentException("The teacher and the student are the same module; a frozen teacher would freeze the student too.", "teacher");
            }

            if (req.NeedsTeacher && req.RequiresSameVocabulary && local.Model.Config.VocabSize != student.Config.VocabSize)
            {
                throw new ArgumentException(
                    $"Objective '{objective.Name}' needs student and teacher to share a vocabulary, but the student's vocabulary has {student.Config.VocabSize} entries and the teacher's {local.Model.Config.VocabSize}. Use a cross-tokenizer objective (e.g. dskd_cma, uld, min_ed) for different tokenizers.",
                    "teacher");
            }
        }
    }

    private void CheckBatch(DistillationBatch batch, int epoch, int index)
    {
        if (batch.Labels.shape.Length != 2 || !batch.Labels.shape.SequenceEqual(batch.InputIds.shape))
        {
            throw new InvalidOperationException($"Batch {index} of epoch {epoch}: labels have shape [{string.Join(", ", batch.Labels.shape)}] but input ids [{string.Join(", ", batch.InputIds.shape)}]; labels must be [B, T] and aligned with the logits.");
        }

        if (objective.Requirements.RequiresTeacherTokens && !batch.HasTeacherTokens)
        {
            throw new InvalidOperationException($"Objective '{objective.Name}' needs the teacher's own tokenisation, but batch {index} of epoch {epoch} has no TeacherInputIds (use a cross-tokenizer batch source).");
        }
    }

    private void CheckTeacherOutput(TeacherOutput output, int epoch, int index)
    {
        var req = objective.Requirements;
        var teacherName = teacher!.GetType().Name;
        if (req.NeedsTeacherLogits && output.Logits is null && !(req.AcceptsSparseTopK && output.TopKLogProbs is not null))
        {
            throw new InvalidOperationException($"Teacher {teacherName} returned no logits for batch {index} of epoch {epoch}, but objective '{objective.Name}' needs them.");
        }

        if (req.NeedsTeacherHiddenStates && output.HiddenStates is null)
        {
            throw new InvalidOperationException($"Teacher {teacherName} returned no hidden states for batch {index} of epoch {epoch}, but objective '{objective.Name}' needs them.");
        }
    }

    private void CastForBFloat16()
    {
        student.Module.to(ScalarType.BFloat16);
        if (teacher is LocalModelTeacher local)
        {
            local.Model.Module.to(ScalarType.BFloat16);
        }

        objective.Module?.to(ScalarType.BFloat16);
    }

    private optim.Optimizer CreateOptimizer(IReadOnlyList<ParameterGroupSpec> groups, MasterWeights? masters)
    {
        var o = options;
        var paramGroups = new List<AdamW.ParamGroup>();
        var offset = 0;
        foreach (var g in groups)
        {
            IEnumerable<Parameter> ps = masters is null
                ? g.Parameters.Select(p => p.Parameter).ToList()
                : masters.Masters.Skip(offset).Take(g.Parameters.Count).ToList();
            offset += g.Parameters.Count;
            // Every AdamW setting passed explicitly: TorchSharp's ParamGroup constructor defaults beta2 to 0.99, not PyTorch's 0.999.
            paramGroups.Add(new AdamW.ParamGroup(ps, new AdamW.Options
            {
                LearningRate = g.BaseLearningRate,
                beta1 = o.Beta1,
                beta2 = o.Beta2,
                eps = o.Epsilon,
                weight_decay = g.WeightDecay,
                amsgrad = false,
                maximize = false,
            }));
        }

        return torch.optim.AdamW(paramGroups, lr: o.LearningRate, beta1: o.Beta1, beta2: o.Beta2, eps: o.Epsilon, weight_decay: o.WeightDecay);
    }

    private string SaveCheckpoint(
        CheckpointStore store,
        Position next,
        optim.Optimizer optimizer,
        MasterWeights? masters,
        IReadOnlyList<ParameterGroupSpec> groups,
        LearningRateSchedule schedule,
        double[] learningRates,
        IReadOnlyDictionary<string, double>? evalMetrics,
        int totalSteps,
        int stepsPerEpoch,
        int batchesPerEpoch)
    {
        var o = options;
        return store.Save(next.Step, dir =>
        {
            var studentDir = Path.Combine(dir, CheckpointStore.StudentFolder);
            Directory.CreateDirectory(studentDir);
            checkpointWriter.Save(student, studentDir);
            ((OptimizerHelper)optimizer).save_state_dict(Path.Combine(dir, CheckpointStore.OptimizerFile));
            if (objective.Module is { } om)
            {
                NamedTensorFile.Write(Path.Combine(dir, CheckpointStore.ObjectiveFile), om.state_dict());
            }

            masters?.Save(Path.Combine(dir, CheckpointStore.MasterWeightsFile));
            using (var rng = torch.get_rng_state())
            {
                NamedTensorFile.Write(Path.Combine(dir, CheckpointStore.RngFile), [new("torch_cpu", rng)]);
            }

            double? bestValue = o.BestMetric is { } m && evalMetrics is not null && evalMetrics.TryGetValue(m, out var v) ? v : null;
            var state = new TrainerState
            {
                GlobalStep = next.Step,
                Epoch = next.Epoch,
                StepInEpoch = next.StepInEpoch,
                TotalSteps = totalSteps,
                StepsPerEpoch = stepsPerEpoch,
                BatchesPerEpoch = batchesPerEpoch,
                GradientAccumulationSteps = o.GradientAccumulationSteps,
                Tokens = next.Tokens,
                Objective = objective.Name,
                Precision = o.Precision,
                Schedule = schedule.Kind,
                WarmupSteps = schedule.WarmupSteps,
                MinLearningRate = schedule.MinLearningRate,
                Groups = [.. groups.Select((g, i) => new TrainerState.GroupState(g.Name, g.BaseLearningRate, learningRates[i], g.Parameters.Count))],
                Metrics = evalMetrics,
                BestMetric = bestValue is null ? null : o.BestMetric,
                BestMetricValue = bestValue,
                HasObjectiveParameters = objective.Module is not null,
                HasMasterWeights = masters is not null,
                CreatedUtc = DateTime.UtcNow.ToString("O", CultureInfo.InvariantCulture),
            };
            CheckpointStore.WriteJson(Path.Combine(dir, CheckpointStore.OptionsFile), o);
            CheckpointStore.WriteJson(Path.Combine(dir, CheckpointStore.StateFile), state); // last: its presence marks a complete folder
        });
    }

    private Position LoadCheckpoint(
        string path,
        optim.Optimizer optimizer,
        MasterWeights? masters,
        IReadOnlyList<ParameterGroupSpec> groups,
        int totalSteps,
        int stepsPerEpoch,
        int batchesPerEpoch)
    {
        var o = options;
        var state = CheckpointStore.ReadState(path);
        var file = Path.Combine(path, CheckpointStore.StateFile);
        void Expect<T>(string field, T saved, T now)
        {
            if (!EqualityComparer<T>.Default.Equals(saved, now))
            {
                throw new ArgumentException($"Cannot resume from '{file}': {field} was {saved} in the checkpoint but is {now} now; an exact resume needs the same setup.");
            }
        }

        Expect("format", state.Format, TrainerState.CurrentFormat);
        Expect("total_steps", state.TotalSteps, totalSteps);
        Expect("steps_per_epoch", state.StepsPerEpoch, stepsPerEpoch);
        Expect("batches_per_epoch", state.BatchesPerEpoch, batchesPerEpoch);
        Expect("gradient_accumulation_steps", state.GradientAccumulationSteps, o.GradientAccumulationSteps);
        Expect("objective", state.Objective, objective.Name);
        Expect("precision", state.Precision, o.Precision);
        Expect("optimizer groups", string.Join(",", state.Groups.Select(g => $"{g.Name}:{g.Parameters}")), string.Join(",", groups.Select(g => $"{g.Name}:{g.Parameters.Count}")));
        Expect("objective parameters", state.HasObjectiveParameters, objective.Module is not null);

        checkpointWriter.Load(student, Path.Combine(path, CheckpointStore.StudentFolder));
        if (objective.Module is { } om)
        {
            NamedTensorFile.LoadInto(Path.Combine(path, CheckpointStore.ObjectiveFile), om.state_dict());
        }

        if (masters is not null)
        {
            masters.Load(Path.Combine(path, CheckpointStore.MasterWeightsFile));
        }

        ((OptimizerHelper)optimizer).load_state_dict(Path.Combine(path, CheckpointStore.OptimizerFile));
        var rng = NamedTensorFile.Read(Path.Combine(path, CheckpointStore.RngFile));
        try
        {
            if (!rng.TryGetValue("torch_cpu", out var cpuState))
            {
                throw new InvalidDataException($"'{Path.Combine(path, CheckpointStore.RngFile)}' has no 'torch_cpu' generator state.");
            }

            torch.set_rng_state(cpuState);
        }
        finally
        {
            foreach (var t in rng.Values)
            {
                t.Dispose();
            }
        }

        return new Position(state.GlobalStep, state.Epoch, state.StepInEpoch, state.Tokens);
    }

    private static Device DeviceOf(nn.Module module)
    {
        foreach (var p in module.parameters())
        {
            return p.device;
        }

        return CPU;
    }

    /// <summary>Where the next step starts: steps done, epoch, step within the epoch, tokens so far.</summary>
    internal readonly record struct Position(int Step, int Epoch, int StepInEpoch, long Tokens);

    /// <summary>What one step reports (loss and parts are NaN / empty unless read back).</summary>
    internal readonly record struct StepStats(double Loss, IReadOnlyDictionary<string, double> Parts, double GradNorm, long Tokens);
}
