using System.Diagnostics;
using System.Text.Json;
using Distill.Data;
using Distill.Eval.Diagnostics;
using Distill.Eval.Evaluation;
using Distill.Eval.Metrics;
using Distill.Generation;
using Distill.Lora;
using Distill.Models;
using Distill.Training;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using static TorchSharp.torch;

namespace Distill.Quickstart;

/// <summary>A progress event of the quickstart: the phase, steps done of the phase's total, and the latest loss.</summary>
/// <param name="Phase">Human-readable phase name.</param>
/// <param name="Done">Units done.</param>
/// <param name="Total">Units in the phase.</param>
/// <param name="Loss">The latest training loss, when training.</param>
public readonly record struct QuickstartProgress(string Phase, int Done, int Total, double? Loss);

/// <summary>One row of the result table.</summary>
/// <param name="Model">Which model (teacher, student before, distilled, SFT).</param>
/// <param name="Parameters">Trainable-or-not parameter count.</param>
/// <param name="RougeL">ROUGE-L F (×100) of greedy answers on the test examples.</param>
/// <param name="ExactMatch">DSKD exact match (×100).</param>
/// <param name="TestLoss">Mean token cross-entropy of the reference answers (teacher-forced).</param>
/// <param name="Top1Agreement">Share of answer positions where the model's argmax equals the teacher's, or null for the teacher.</param>
/// <param name="MeanKl">Mean per-position KL(teacher ‖ model) over answer tokens, or null for the teacher.</param>
public sealed record ModelScores(string Model, long Parameters, double RougeL, double ExactMatch, double TestLoss, double? Top1Agreement, double? MeanKl);

/// <summary>What the quickstart produced.</summary>
/// <param name="Rows">Scores of teacher, student before, distilled student and (optionally) the SFT baseline.</param>
/// <param name="Objective">The distillation objective.</param>
/// <param name="OutputDirectory">The run folder.</param>
/// <param name="TeacherDirectory">The teacher's HF folder.</param>
/// <param name="TeacherFromCache">Whether the teacher was loaded from an earlier run.</param>
/// <param name="DistilledCheckpoint">The distilled student's best checkpoint.</param>
/// <param name="SftCheckpoint">The SFT baseline's best checkpoint, if trained.</param>
/// <param name="TensorBoardDirectories">TensorBoard log folders of each training run.</param>
/// <param name="Elapsed">Wall time.</param>
public sealed record QuickstartReport(
    IReadOnlyList<ModelScores> Rows,
    string Objective,
    string OutputDirectory,
    string TeacherDirectory,
    bool TeacherFromCache,
    string DistilledCheckpoint,
    string? SftCheckpoint,
    IReadOnlyList<string> TensorBoardDirectories,
    TimeSpan Elapsed)
{
    /// <summary>Gets a row by model name.</summary>
    /// <param name="model">The row's <see cref="ModelScores.Model"/>.</param>
    /// <returns>The row.</returns>
    public ModelScores this[string model] => Rows.Single(r => r.Model == model);

    /// <summary>Gets the number of held-out test examples every model was scored on.</summary>
    public int TestExamples { get; init; }
}

/// <summary>
/// The quickstart, top to bottom: data → teacher (train from scratch or load) → student → evaluate → distill → SFT baseline →
/// evaluate → report. <see cref="Run"/> is what <c>Program.cs</c> renders and what the integration test calls with small settings.
/// </summary>
public sealed class QuickstartPipeline(QuickstartSettings settings, ILoggerFactory? loggerFactory = null)
{
    /// <summary>The row names of the report.</summary>
    public const string TeacherRow = "teacher";

    /// <summary>The untrained student's row.</summary>
    public const string StudentBeforeRow = "student (before)";

    /// <summary>The distilled student's row.</summary>
    public const string DistilledRow = "student distilled";

    /// <summary>The SFT baseline's row.</summary>
    public const string SftRow = "student SFT (no teacher)";

    private const string FingerprintFile = "quickstart-teacher.json";
    private readonly ILoggerFactory loggers = loggerFactory ?? NullLoggerFactory.Instance;

    /// <summary>Gets or sets the progress callback (called on the pipeline's thread).</summary>
    public Action<QuickstartProgress>? OnProgress { get; set; }

    /// <summary>Runs the whole quickstart.</summary>
    /// <param name="cancellationToken">Stops training cleanly (a checkpoint is written) and skips the remaining phases.</param>
    /// <returns>The report.</returns>
    public QuickstartReport Run(CancellationToken cancellationToken = default)
    {
        var errors = settings.Validate();
        if (errors.Count > 0)
        {
            throw new ArgumentException(string.Join(" ", errors));
        }

        var clock = Stopwatch.StartNew();
        Directory.CreateDirectory(settings.OutputDirectory);
        var services = new ServiceCollection();
        services.AddSingleton(loggers);
        services.AddSingleton(typeof(ILogger<>), typeof(Logger<>));
        services.AddDistill(o =>
        {
            o.Seed = settings.Seed;
            o.DType = "float32";
            // The bundled models are tiny: one thread avoids OpenMP synchronisation that costs more than it saves (measured 5x
            // less CPU time per step on a busy 2-core machine). Real models get torch's default unless --threads says otherwise.
            o.Threads = settings.Threads ?? (settings.TeacherPath is null && settings.StudentPath is null ? 1 : null);
        })
            .AddDistillLosses(o =>
            {
                o.Divergence.KdRate = settings.KdRate;
                o.Divergence.Temperature = settings.KdTemperature;
            })
            .AddDistillTrainer(o =>
            {
                o.LogEverySteps = 10;
                o.Seed = settings.Seed;
                o.Precision = settings.BFloat16 ? TrainingPrecision.BFloat16 : TrainingPrecision.Float32;
                o.WarmupRatio = 0.05;
                o.Schedule = LearningRateScheduleKind.Cosine;
                o.MinLearningRate = 1e-5;
                o.MaxGradNorm = 1.0;
            });
        using var provider = services.BuildServiceProvider();
        var device = provider.GetRequiredService<IDistillRuntime>().Compute.Device;
        var objectives = provider.GetRequiredService<IObjectiveFactory>();
        var trainers = provider.GetRequiredService<IDistillationTrainerFactory>();

        // 1. Data: tokenizer, splits, tokenised datasets.
        var (tokenizer, bundledTokenizer) = LoadTokenizer();
        var (train, dev, test) = LoadSplits();
        if (train.Count == 0 || test.Count == 0)
        {
            throw new ArgumentException($"No bundled examples of the task families {string.Join(", ", settings.Tasks ?? [])}.");
        }
        var trainSet = TokenizedDataset.Create(train, tokenizer, null, settings.MaxLength, settings.MaxLength / 2);
        var devSet = TokenizedDataset.Create(dev.Take(settings.DevExamples), tokenizer, null, settings.MaxLength, settings.MaxLength / 2);
        var testSet = TokenizedDataset.Create(test.Take(settings.EvalExamples), tokenizer, null, settings.MaxLength, settings.MaxLength / 2);
        var batches = (new DistillationBatchSource(trainSet, new BatchSampler(trainSet.Count, settings.BatchSize, settings.Seed)));
        var eos = TokenizedDataset.PadId(tokenizer);

        // 2. Teacher: an HF folder, the cached bundled teacher, or a new one trained from scratch with the trainer and SFT.
        var (teacher, teacherDir, fromCache, teacherBoard) = PrepareTeacher(tokenizer, bundledTokenizer, batches, objectives, trainers, device, cancellationToken);
        var rows = new List<ModelScores> { Score(TeacherRow, teacher, null, testSet, eos, cancellationToken) };
        var boards = new List<string>();
        if (teacherBoard is not null)
        {
            boards.Add(teacherBoard);
        }

        // 3. The student before training.
        using (var before = CreateStudent(tokenizer, device))
        {
            rows.Add(Score(StudentBeforeRow, before, teacher, testSet, eos, cancellationToken));
        }

        // 4. Distillation, then 5. the same student trained with plain SFT for the same steps.
        var teacherWrapper = new LocalModelTeacher(teacher);
        var (distilledRow, distilledCheckpoint, distilledBoard) = TrainStudent(DistilledRow, "distill", settings.Objective, teacherWrapper, tokenizer, batches, devSet, teacher, testSet, eos, objectives, trainers, device, cancellationToken);
        rows.Add(distilledRow);
        boards.Add(distilledBoard);
        string? sftCheckpoint = null;
        if (settings.SftBaseline && !cancellationToken.IsCancellationRequested)
        {
            var (sftRow, sftCk, sftBoard) = TrainStudent(SftRow, "sft", "sft", null, tokenizer, batches, devSet, teacher, testSet, eos, objectives, trainers, device, cancellationToken);
            rows.Add(sftRow);
            sftCheckpoint = sftCk;
            boards.Add(sftBoard);
        }

        teacher.Dispose();
        return new QuickstartReport(rows, settings.Objective, Path.GetFullPath(settings.OutputDirectory), teacherDir, fromCache, distilledCheckpoint, sftCheckpoint, boards, clock.Elapsed) { TestExamples = testSet.Count };
    }

    private (HfTokenizer Tokenizer, BundledTokenizer? Bundled) LoadTokenizer()
    {
        if (settings.TeacherPath is not null)
        {
            return (HfTokenizer.FromPretrained(settings.TeacherPath, loggers.CreateLogger<HfTokenizer>()), null);
        }

        var which = settings.Tokenizer == "bytes" ? BundledTokenizer.Bytes : BundledTokenizer.Bpe;
        return (BundledData.GetTokenizer(which), which);
    }

    private (List<TextExample> Train, List<TextExample> Dev, List<TextExample> Test) LoadSplits()
    {
        var template = InstructionTemplate.FromName(settings.Template);
        if (settings.DataPath is null)
        {
            var tasks = settings.Tasks is { Count: > 0 } t ? new HashSet<string>(t, StringComparer.Ordinal) : null;
            List<TextExample> Split(BundledSplit split) =>
                [.. BundledData.Load(split).Where(e => tasks is null || (e.Task is { } task && tasks.Contains(task))).Select(template.Apply)];
            return (Split(BundledSplit.Train), Split(BundledSplit.Dev), Split(BundledSplit.Test));
        }

        // A user file: every 20th example is test, the next one dev, the rest train (deterministic, no shuffling needed).
        var all = JsonDatasetReader.ReadTextExamples(settings.DataPath, template).ToList();
        return (
            [.. all.Where((_, i) => i % 20 is not (0 or 1))],
            [.. all.Where((_, i) => i % 20 == 1)],
            [.. all.Where((_, i) => i % 20 == 0)]);
    }

    private Gpt2Config BundledConfig(HfTokenizer tokenizer, int layers, int hidden) => new()
    {
        ModelType = "gpt2",
        VocabSize = tokenizer.VocabSize,
        HiddenSize = hidden,
        NumHiddenLayers = layers,
        NumAttentionHeads = Math.Max(1, hidden / 32),
        MaxPositionEmbeddings = settings.MaxLength,
        EosTokenIds = [TokenizedDataset.PadId(tokenizer)],
        BosTokenId = TokenizedDataset.PadId(tokenizer),
    };

    private CausalLM CreateStudent(HfTokenizer tokenizer, Device device) => settings.StudentPath is not null
        ? AutoCausalLM.FromPretrained(settings.StudentPath, device: device)
        : AutoCausalLM.FromConfig(BundledConfig(tokenizer, settings.StudentLayers, settings.StudentHidden), settings.Seed + 1, device: device);

    private (CausalLM Teacher, string Directory, bool FromCache, string? Board) PrepareTeacher(
        HfTokenizer tokenizer, BundledTokenizer? bundled, IBatchSource batches, IObjectiveFactory objectives, IDistillationTrainerFactory trainers, Device device, CancellationToken cancellationToken)
    {
        if (settings.TeacherPath is not null)
        {
            return (AutoCausalLM.FromPretrained(settings.TeacherPath, device: device), Path.GetFullPath(settings.TeacherPath), true, null);
        }

        var dir = Path.GetFullPath(Path.Combine(settings.OutputDirectory, "teacher"));
        var fingerprint = JsonSerializer.Serialize(new
        {
            tokenizer = bundled?.ToString(),
            layers = settings.TeacherLayers,
            hidden = settings.TeacherHidden,
            steps = settings.TeacherSteps,
            batch = settings.BatchSize,
            lr = settings.TeacherLearningRate,
            maxLength = settings.MaxLength,
            seed = settings.Seed,
            template = settings.Template,
            data = settings.DataPath,
            tasks = settings.DataPath is null && settings.Tasks is { Count: > 0 } t ? string.Join(",", t.Order(StringComparer.Ordinal)) : null,
        });
        var fingerprintPath = Path.Combine(dir, FingerprintFile);
        if (!settings.RetrainTeacher && File.Exists(fingerprintPath) && File.ReadAllText(fingerprintPath) == fingerprint)
        {
            return (AutoCausalLM.FromPretrained(dir, device: device), dir, true, null);
        }

        var teacher = AutoCausalLM.FromConfig(BundledConfig(tokenizer, settings.TeacherLayers, settings.TeacherHidden), settings.Seed, device: device);
        var trainer = trainers.Create(teacher, objectives.Create("sft"), null, o =>
        {
            o.OutputDirectory = Path.Combine(settings.OutputDirectory, "teacher-training");
            o.MaxSteps = settings.TeacherSteps;
            o.LearningRate = settings.TeacherLearningRate;
            o.SaveCheckpoints = false;
            o.Precision = TrainingPrecision.Float32;
        });
        trainer.Progress = Progress("training the teacher from scratch (SFT)");
        var result = trainer.Train(batches, cancellationToken: cancellationToken);
        if (result.Status == TrainingStatus.Cancelled)
        {
            throw new OperationCanceledException("Cancelled while training the teacher.");
        }

        // Cache it as an HF folder (weights, config, tokenizer), written to a temporary folder and renamed into place.
        var temp = dir + ".tmp-" + Guid.NewGuid().ToString("N");
        teacher.SavePretrained(temp, tokenizer); // weights, config and tokenizer files: transformers' Auto* classes open it

        File.WriteAllText(Path.Combine(temp, FingerprintFile), fingerprint);
        if (Directory.Exists(dir))
        {
            Directory.Delete(dir, recursive: true);
        }

        Directory.Move(temp, dir);
        teacher.eval();
        return (teacher, dir, false, Path.GetFullPath(Path.Combine(settings.OutputDirectory, "teacher-training", "tensorboard")));
    }

    private (ModelScores Row, string Checkpoint, string Board) TrainStudent(
        string rowName,
        string runName,
        string objectiveName,
        ITeacher? teacher,
        HfTokenizer tokenizer,
        IBatchSource batches,
        TokenizedDataset devSet,
        CausalLM reference,
        TokenizedDataset testSet,
        long eos,
        IObjectiveFactory objectives,
        IDistillationTrainerFactory trainers,
        Device device,
        CancellationToken cancellationToken)
    {
        using var student = CreateStudent(tokenizer, device);
        student.train();
        LoraModel? lora = null;
        if (settings.Lora)
        {
            var config = new LoraConfig { R = settings.LoraRank, LoraAlpha = settings.LoraAlpha, TargetModules = [.. settings.LoraTargets ?? DefaultLoraTargets(student)] };
            lora = LoraModel.Inject(student, config, loggers.CreateLogger<LoraModel>());
        }

        IModelCheckpointWriter writer = lora is null ? new HfCheckpointWriter().WithTokenizer(tokenizer) : new PeftAdapterCheckpointWriter(lora, settings.StudentPath);
        var output = Path.Combine(settings.OutputDirectory, runName);
        if (Directory.Exists(output))
        {
            Directory.Delete(output, recursive: true); // a fresh run each time; resume is the trainer's job, shown in its tests
        }

        var trainer = trainers.Create(student, objectives.Create(objectiveName), teacher, o =>
        {
            o.OutputDirectory = output;
            o.MaxSteps = settings.Steps;
            o.LearningRate = settings.LearningRate;
            o.BestMetric = settings.DevExamples > 0 ? RougeLMetric.MetricName : null;
            o.EvaluationStrategy = EvaluationStrategy.Epoch; // as when its README table was measured (the default, Auto, would evaluate ~10 times)
            o.KeepBestCheckpoints = 1;
            o.KeepLastCheckpoints = 1;
        }, writer);
        trainer.Progress = Progress(runName == "distill" ? $"distilling the student ({objectiveName})" : "training the SFT baseline");
        if (settings.DevExamples > 0)
        {
            trainer.Evaluate = ctx => new Dictionary<string, double>
            {
                [RougeLMetric.MetricName] = GenerateAndScore(student, devSet, eos, ctx.CancellationToken).RougeL,
            };
        }

        var result = trainer.Train(batches, cancellationToken: cancellationToken);
        var checkpoint = result.BestCheckpoint ?? result.LastCheckpoint ?? throw new InvalidOperationException($"The {runName} run wrote no checkpoint.");
        writer.Load(student, Path.Combine(checkpoint, CheckpointLayout.StudentFolder)); // evaluate the best checkpoint, as DSKD does
        var row = Score(rowName, student, reference, testSet, eos, cancellationToken);
        return (row, checkpoint, Path.GetFullPath(Path.Combine(output, "tensorboard")));
    }

    private static IEnumerable<string> DefaultLoraTargets(CausalLM model) => model.Config.ModelType == "gpt2"
        ? ["c_attn", "c_proj", "c_fc"]
        : ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"];

    private ModelScores Score(string name, CausalLM model, CausalLM? teacher, TokenizedDataset testSet, long eos, CancellationToken cancellationToken)
    {
        OnProgress?.Invoke(new QuickstartProgress($"evaluating {name}", 0, 1, null));
        var (rouge, em) = GenerateAndScore(model, testSet, eos, cancellationToken);
        var (loss, agreement, kl) = TeacherForced(model, teacher, testSet);
        OnProgress?.Invoke(new QuickstartProgress($"evaluating {name}", 1, 1, null));
        return new ModelScores(name, model.parameters().Sum(p => p.numel()), rouge, em, loss, agreement, kl);
    }

    /// <summary>Greedy answers for every example, scored with ROUGE-L and DSKD's exact match (×100).</summary>
    private (double RougeL, double ExactMatch) GenerateAndScore(CausalLM model, TokenizedDataset set, long eos, CancellationToken cancellationToken)
    {
        // Greedy decoding is deterministic, so one seed is enough (DSKD samples and averages seeds 10..50).
        var report = GenerationEvaluation.Evaluate(model, set, [new RougeLMetric(), new DskdExactMatchMetric()], new GenerationEvaluationOptions
        {
            Seeds = [settings.Seed],
            BatchSize = 50,
            StopText = null,
            Generation = new GenerationOptions { MaxNewTokens = settings.MaxNewTokens, EosTokenIds = [eos], PadTokenId = eos },
        }, loggers.CreateLogger<SeededEvaluator>(), cancellationToken);
        return (report.Metrics[RougeLMetric.MetricName].Mean, report.Metrics[DskdExactMatchMetric.MetricName].Mean);
    }

    /// <summary>Teacher-forced answer loss of <paramref name="model"/>, and its agreement with / KL from the teacher.</summary>
    private static (double Loss, double? Agreement, double? Kl) TeacherForced(CausalLM model, CausalLM? teacher, TokenizedDataset set)
    {
        using var noGrad = no_grad();
        var training = model.training;
        model.eval();
        try
        {
            var nll = default(Distill.Eval.Metrics.PerplexityResult);
            var diag = default(DiagnosticsResult);
            for (var start = 0; start < set.Count; start += 50)
            {
                using var scope = NewDisposeScope();
                using var batch = set.Collate([.. Enumerable.Range(start, Math.Min(50, set.Count - start))]);
                var device = model.Device;
                var logits = model.Forward(new CausalLMInput { InputIds = batch.InputIds.to(device), AttentionMask = batch.AttentionMask.to(device), PositionIds = batch.PositionIds?.to(device) }).Logits!;
                var labels = batch.Labels.to(device);
                nll = nll.Add(Perplexity.FromLogits(logits, labels));
                if (teacher is not null)
                {
                    var t = teacher.Forward(new CausalLMInput { InputIds = batch.InputIds.to(device), AttentionMask = batch.AttentionMask.to(device), PositionIds = batch.PositionIds?.to(device) }).Logits!;
                    var d = DistillationDiagnostics.Compute(logits, t, labels);
                    diag = diag.TokenCount == 0 ? d : diag.Add(d);
                }
            }

            return (nll.MeanNll, teacher is null ? null : diag.Top1Agreement, teacher is null ? null : diag.MeanKl);
        }
        finally
        {
            model.train(training);
        }
    }

    private IProgress<TrainingProgress> Progress(string phase) =>
        new CallbackProgress(p => OnProgress?.Invoke(new QuickstartProgress(phase, p.Step, p.TotalSteps, p.Loss)));

    private sealed class CallbackProgress(Action<TrainingProgress> report) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => report(value);
    }
}
