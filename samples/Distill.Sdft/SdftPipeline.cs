using System.Diagnostics;
using System.Text.Json;
using Distill.Data;
using Distill.Data.Synthesis;
using Distill.Lora;
using Distill.Models;
using Distill.Training;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using static TorchSharp.torch;

namespace Distill.Sdft;

/// <summary>A progress event of the sample: phase, units done of the phase's total, latest loss when training.</summary>
/// <param name="Phase">Human-readable phase name.</param>
/// <param name="Done">Units done.</param>
/// <param name="Total">Units in the phase.</param>
/// <param name="Loss">Latest training loss, if any.</param>
public readonly record struct SdftSampleProgress(string Phase, int Done, int Total, double? Loss);

/// <summary>One model's scores over the seeds.</summary>
/// <param name="Model">seed model, SFT or SDFT.</param>
/// <param name="Task">Task metric per seed (×100).</param>
/// <param name="General">General metric per seed (×100).</param>
public sealed record SdftRow(string Model, IReadOnlyList<double> Task, IReadOnlyList<double> General);

/// <summary>What the sample produced.</summary>
/// <param name="Rows">Seed model, SFT and SDFT rows.</param>
/// <param name="Statistics">The filter statistics of each seed's SDFT run.</param>
/// <param name="TaskMetric">Name of the task metric.</param>
/// <param name="GeneralMetric">Name of the general metric.</param>
/// <param name="TaskTestCount">Task test examples.</param>
/// <param name="GeneralTestCount">General test examples.</param>
/// <param name="DistilledFiles">The distilled JSONL file of each seed.</param>
/// <param name="Elapsed">Wall time.</param>
public sealed record SdftReport(
    IReadOnlyList<SdftRow> Rows,
    IReadOnlyList<SdftStatistics> Statistics,
    string TaskMetric,
    string GeneralMetric,
    int TaskTestCount,
    int GeneralTestCount,
    IReadOnlyList<string> DistilledFiles,
    TimeSpan Elapsed)
{
    /// <summary>Gets a row by model name.</summary>
    /// <param name="model">The row name.</param>
    public SdftRow this[string model] => Rows.Single(r => r.Model == model);

    /// <summary>Gets whether the seed model was loaded from an earlier run's cache.</summary>
    public bool SeedFromCache { get; init; }
}

/// <summary>
/// SDFT end to end: seed model → evaluate → for each seed: self-distil the task data (rewrite, filter, fall back), LoRA-SFT on
/// the original data and on the distilled data, evaluate both → report. <see cref="Run"/> is what <c>Program.cs</c> renders.
/// </summary>
public sealed class SdftPipeline(SdftSettings settings, ILoggerFactory? loggerFactory = null)
{
    /// <summary>The seed model's row.</summary>
    public const string SeedRow = "seed model";

    /// <summary>The vanilla LoRA fine-tuning row.</summary>
    public const string SftRow = "SFT (LoRA)";

    /// <summary>The SDFT row.</summary>
    public const string SdftRowName = "SDFT (LoRA)";

    /// <summary>The bundled families the seed model learns (the "general" split).</summary>
    public static readonly IReadOnlyList<string> GeneralFamilies = ["uppercase", "capital", "opposite", "multiply"];

    /// <summary>Bundled families shown to the seed model only through the distillation prompt (restating a given number), never as questions it must answer.</summary>
    public static readonly IReadOnlyList<string> RestateFamilies = ["add", "subtract"];

    /// <summary>The bundled family the seed model is fine-tuned on (the "task" split): letter counts, integer answers checked as math.</summary>
    public const string TaskFamily = "count";

    /// <summary>The LoRA learning rate of the bundled run (the official 1e-4 barely moves a tiny model in a few dozen steps).</summary>
    public const double BundledLearningRate = 1e-2;

    /// <summary>How many general rows (from the seed model's training split, never seen by fine-tuning) measure forgetting.</summary>
    public const int GeneralEvalRows = 100;

    private const string FingerprintFile = "sdft-seed.json";
    private readonly ILoggerFactory loggers = loggerFactory ?? NullLoggerFactory.Instance;

    /// <summary>Gets or sets the progress callback.</summary>
    public Action<SdftSampleProgress>? OnProgress { get; set; }

    /// <summary>The bundled seed model's answer style: <c>"The answer is X."</c>.</summary>
    /// <param name="answer">The bare answer.</param>
    /// <returns>The styled response.</returns>
    public static string SeedStyle(string answer) => "The answer is " + answer + ".";

    /// <summary>Runs the sample.</summary>
    /// <param name="cancellationToken">Stops after the current step or batch; distilled files resume on the next run.</param>
    /// <returns>The report.</returns>
    public SdftReport Run(CancellationToken cancellationToken = default)
    {
        var problems = settings.Validate();
        if (problems.Count > 0)
        {
            throw new ArgumentException(string.Join(" ", problems));
        }

        var clock = Stopwatch.StartNew();
        Directory.CreateDirectory(settings.OutputDirectory);
        var services = new ServiceCollection();
        services.AddSingleton(loggers);
        services.AddSingleton(typeof(ILogger<>), typeof(Logger<>));
        services.AddDistill(o =>
        {
            o.Seed = settings.Seeds[0];
            o.DType = "float32";
            o.Threads = settings.Threads ?? (settings.Bundled ? 1 : null); // tiny models: one thread beats OpenMP overhead
        })
            .AddDistillLosses()
            .AddDistillTrainer(o =>
            {
                o.LogEverySteps = 10;
                o.TensorBoard = false;
            });
        using var provider = services.BuildServiceProvider();
        var device = provider.GetRequiredService<IDistillRuntime>().Compute.Device;
        var objectives = provider.GetRequiredService<IObjectiveFactory>();
        var trainers = provider.GetRequiredService<IDistillationTrainerFactory>();

        var task = SdftTask.FromName(settings.Task);
        var sdft = new SdftOptions
        {
            Task = task.Name,
            Branch = settings.Branch,
            DistillTemplate = settings.Bundled ? SdftTemplate.CompactDistill.Name : null,
            TrainTemplate = settings.Bundled ? SdftTemplate.Compact.Name : null,
            MaxNewTokens = settings.MaxNewTokens ?? (settings.Bundled ? 32 : 512),
            BatchSize = settings.GenerationBatchSize,
        };
        sdft.ThrowIfInvalid();
        var trainTemplate = sdft.ResolveTrainTemplate();

        // 1. Data and tokenizer.
        var tokenizer = settings.Bundled ? BundledData.TokenizerB() : HfTokenizer.FromPretrained(settings.ModelPath!, loggers.CreateLogger<HfTokenizer>());
        var bos = tokenizer.BosTokenId is int b ? tokenizer.ConvertIdToToken(b) : null;
        var data = settings.Bundled ? BundledSplits() : UserSplits();
        var taskTrain = settings.TrainExamples > 0 ? [.. data.TaskTrain.Take(settings.TrainExamples)] : data.TaskTrain;
        var taskTest = Limit(data.TaskTest);
        var generalTest = Limit(data.GeneralTest);
        var evaluator = new SampleEvaluator(tokenizer, trainTemplate, settings.Branch, bos, task.Kind, settings.Bundled, sdft.MaxNewTokens, settings.GenerationBatchSize);

        // 2. The seed model: an HF folder, or the bundled one (cached; trained from scratch on the general split).
        var (seedDirectory, fromCache) = settings.Bundled
            ? PrepareBundledSeed(tokenizer, data.GeneralTrain, bos, objectives, trainers, device, cancellationToken)
            : (Path.GetFullPath(settings.ModelPath!), true);
        if (!fromCache)
        {
            foreach (var stale in Directory.GetDirectories(settings.OutputDirectory, "run-seed-*"))
            {
                Directory.Delete(stale, recursive: true); // distilled files of an older seed model
            }
        }

        CausalLM LoadSeed() => AutoCausalLM.FromPretrained(seedDirectory, device: device);
        double seedTask, seedGeneral;
        using (var seedModel = LoadSeed())
        {
            (seedTask, seedGeneral) = Evaluate(SeedRow, evaluator, seedModel, taskTest, generalTest, cancellationToken);
        }

        // 3. Per seed: SDFT rewrite, then LoRA SFT on the original and on the distilled responses.
        var sftScores = new List<(double Task, double General)>();
        var sdftScores = new List<(double Task, double General)>();
        var statistics = new List<SdftStatistics>();
        var files = new List<string>();
        foreach (var seed in settings.Seeds)
        {
            var folder = Path.Combine(settings.OutputDirectory, $"run-seed-{seed}");
            SdftResult distilled;
            using (var seedModel = LoadSeed())
            {
                var synthesizer = new SdftSynthesizer(seedModel, tokenizer, new SdftOptions
                {
                    Task = sdft.Task,
                    Branch = sdft.Branch,
                    DistillTemplate = sdft.DistillTemplate,
                    TrainTemplate = sdft.TrainTemplate,
                    MaxNewTokens = sdft.MaxNewTokens,
                    BatchSize = sdft.BatchSize,
                    Seed = seed,
                }, Distill.Eval.Metrics.SdftAnswerChecks.For(task.Kind, settings.Branch), loggers.CreateLogger<SdftSynthesizer>())
                {
                    Progress = new CallbackProgress<SdftProgress>(p => OnProgress?.Invoke(new SdftSampleProgress($"seed {seed}: SDFT rewrites", p.Done, p.Total, null))),
                };
                distilled = synthesizer.Run(taskTrain, Path.Combine(folder, "distilled.jsonl"), cancellationToken);
            }

            if (!distilled.Completed)
            {
                throw new OperationCanceledException($"Cancelled during SDFT generation; run again to resume {distilled.OutputPath}.");
            }

            statistics.Add(distilled.Statistics);
            files.Add(Path.GetFullPath(distilled.OutputPath));
            sftScores.Add(FineTune($"seed {seed}: SFT", seed, Path.Combine(folder, "sft"), taskTrain, LoadSeed, task, evaluator, tokenizer, bos, objectives, trainers, taskTest, generalTest, cancellationToken));
            sdftScores.Add(FineTune($"seed {seed}: SDFT", seed, Path.Combine(folder, "sdft"), distilled.Distilled, LoadSeed, task, evaluator, tokenizer, bos, objectives, trainers, taskTest, generalTest, cancellationToken));
        }

        var rows = new List<SdftRow>
        {
            new(SeedRow, [.. settings.Seeds.Select(_ => seedTask)], [.. settings.Seeds.Select(_ => seedGeneral)]),
            new(SftRow, [.. sftScores.Select(s => s.Task)], [.. sftScores.Select(s => s.General)]),
            new(SdftRowName, [.. sdftScores.Select(s => s.Task)], [.. sdftScores.Select(s => s.General)]),
        };
        return new SdftReport(rows, statistics, evaluator.TaskMetricName, evaluator.GeneralMetricName, taskTest.Count, generalTest.Count, files, clock.Elapsed) { SeedFromCache = fromCache };
    }

    private List<InstructionExample> Limit(IReadOnlyList<InstructionExample> rows) =>
        settings.EvalExamples > 0 ? [.. rows.Take(settings.EvalExamples)] : [.. rows];

    private (double Task, double General) Evaluate(string name, SampleEvaluator evaluator, CausalLM model, IReadOnlyList<InstructionExample> taskTest, IReadOnlyList<InstructionExample> generalTest, CancellationToken cancellationToken)
    {
        OnProgress?.Invoke(new SdftSampleProgress($"evaluating {name}", 0, 2, null));
        var taskScore = evaluator.TaskScore(model, taskTest, cancellationToken);
        OnProgress?.Invoke(new SdftSampleProgress($"evaluating {name}", 1, 2, null));
        var generalScore = evaluator.GeneralScore(model, generalTest, cancellationToken);
        OnProgress?.Invoke(new SdftSampleProgress($"evaluating {name}", 2, 2, null));
        return (taskScore, generalScore);
    }

    /// <summary>LoRA fine-tuning of a fresh copy of the seed model with plain CE (the official SDFT/SFT recipe), then evaluation.</summary>
    private (double Task, double General) FineTune(
        string name,
        int seed,
        string output,
        IReadOnlyList<InstructionExample> train,
        Func<CausalLM> loadSeed,
        SdftTask task,
        SampleEvaluator evaluator,
        HfTokenizer tokenizer,
        string? bos,
        IObjectiveFactory objectives,
        IDistillationTrainerFactory trainers,
        IReadOnlyList<InstructionExample> taskTest,
        IReadOnlyList<InstructionExample> generalTest,
        CancellationToken cancellationToken)
    {
        using var model = loadSeed();
        model.train();
        random.manual_seed(seed); // LoRA A init
        var lora = LoraModel.Inject(model, new LoraConfig
        {
            R = SdftPreset.LoraRank,
            LoraAlpha = SdftPreset.LoraAlpha,
            LoraDropout = SdftPreset.LoraDropout(settings.Branch),
            TargetModules = [.. settings.LoraTargets ?? (model.Config.ModelType == "gpt2" ? ["c_attn"] : SdftPreset.LoraTargetModules)],
            FanInFanOut = model.Config.ModelType == "gpt2", // GPT-2's Conv1D stores [in, out], as PEFT notes
        }, loggers.CreateLogger<LoraModel>());
        var template = evaluator.TrainTemplate;
        var examples = train.Select(e => new TextExample(
            template.Render(SdftTemplate.Query(e.Instruction, e.Input), e.Output, settings.Branch, bos),
            template.ResponsePrefix + e.Output)).ToList();
        var dataset = TokenizedDataset.Create(examples, tokenizer, null, 1024, 1023, SequenceFormat.Dskd, SequenceFormat.Dskd);
        var batchSize = settings.BatchSize ?? (settings.Bundled ? 8 : SdftPreset.BatchSize);
        var batches = new DistillationBatchSource(dataset, new BatchSampler(dataset.Count, batchSize, seed, shuffle: true, dropLast: false));
        if (Directory.Exists(output))
        {
            Directory.Delete(output, recursive: true);
        }

        var trainer = trainers.Create(model, objectives.Create(SdftPreset.Objective), null, o =>
        {
            SdftPreset.Apply(o, task);
            o.OutputDirectory = output;
            o.Seed = seed;
            o.SaveCheckpoints = false;
            o.EvaluateAtEpochEnd = false;
            o.Epochs = settings.Epochs ?? task.Epochs;
            o.LearningRate = settings.LearningRate ?? (settings.Bundled ? BundledLearningRate : SdftPreset.LearningRate);
            o.GradientAccumulationSteps = settings.Bundled && settings.BatchSize is null ? 1 : SdftPreset.GradientAccumulationSteps;
        });
        trainer.Progress = new CallbackProgress<TrainingProgress>(p => OnProgress?.Invoke(new SdftSampleProgress(name + " (LoRA)", p.Step, p.TotalSteps, p.Loss)));
        var result = trainer.Train(batches, cancellationToken: cancellationToken);
        if (result.Status == TrainingStatus.Cancelled)
        {
            throw new OperationCanceledException($"Cancelled while training {name}.");
        }

        _ = lora;
        return Evaluate(name, evaluator, model, taskTest, generalTest, cancellationToken);
    }

    private static IReadOnlyList<InstructionExample> RestateRows()
    {
        var restate = new HashSet<string>(RestateFamilies, StringComparer.Ordinal);
        return [.. BundledData.Load(BundledSplit.Train).Where(e => e.Task is { } t && restate.Contains(t))];
    }

    private (IReadOnlyList<InstructionExample> GeneralTrain, IReadOnlyList<InstructionExample> TaskTrain, IReadOnlyList<InstructionExample> TaskTest, IReadOnlyList<InstructionExample> GeneralTest) BundledSplits()
    {
        var general = new HashSet<string>(GeneralFamilies, StringComparer.Ordinal);
        var train = BundledData.Load(BundledSplit.Train);
        var held = BundledData.Load(BundledSplit.Dev).Concat(BundledData.Load(BundledSplit.Test)).ToList();
        List<InstructionExample> generalTrain = [.. train.Where(e => e.Task is { } t && general.Contains(t))];
        // Forgetting is measured on what the seed model knows: general rows it was trained on, which fine-tuning never sees.
        // (A model this small answers few general rows with unseen inputs, so held-out general rows would sit at the floor.)
        return (
            generalTrain,
            [.. train.Where(e => e.Task == TaskFamily)],
            [.. held.Where(e => e.Task == TaskFamily)],
            [.. generalTrain.Take(GeneralEvalRows)]);
    }

    private (IReadOnlyList<InstructionExample> GeneralTrain, IReadOnlyList<InstructionExample> TaskTrain, IReadOnlyList<InstructionExample> TaskTest, IReadOnlyList<InstructionExample> GeneralTest) UserSplits()
    {
        var all = SdftDataset.Read(settings.DataPath!);
        var general = SdftDataset.Read(settings.GeneralPath!);
        if (settings.TaskTestPath is { } testPath)
        {
            return ([], all, SdftDataset.Read(testPath), general);
        }

        return ([], [.. all.Where((_, i) => i % 10 != 9)], [.. all.Where((_, i) => i % 10 == 9)], general);
    }

    private (string Directory, bool FromCache) PrepareBundledSeed(
        HfTokenizer tokenizer, IReadOnlyList<InstructionExample> generalTrain, string? bos, IObjectiveFactory objectives, IDistillationTrainerFactory trainers, Device device, CancellationToken cancellationToken)
    {
        var dir = Path.GetFullPath(Path.Combine(settings.OutputDirectory, "seed-model"));
        var fingerprint = JsonSerializer.Serialize(new
        {
            hidden = settings.SeedHidden,
            layers = settings.SeedLayers,
            steps = settings.SeedSteps,
            lr = settings.SeedLearningRate,
            branch = settings.Branch.ToString(),
            seed = settings.Seeds[0],
            families = string.Join(",", GeneralFamilies.Concat(RestateFamilies)),
            version = 3,
        });
        var fingerprintPath = Path.Combine(dir, FingerprintFile);
        if (!settings.RetrainSeed && File.Exists(fingerprintPath) && File.ReadAllText(fingerprintPath) == fingerprint)
        {
            return (dir, true);
        }

        // The seed model answers in its own style ("The answer is X.") and, through the distillation template, learns to
        // answer with the reference in view: the stand-in for a chat model that can rewrite a given answer.
        var train = SdftTemplate.Compact;
        var distill = SdftTemplate.CompactDistill;
        TextExample Styled(SdftTemplate template, InstructionExample e) =>
            new(template.Render(SdftTemplate.Query(e.Instruction, e.Input), e.Output, settings.Branch, bos), template.ResponsePrefix + SeedStyle(e.Output));
        var examples = generalTrain.SelectMany(e => new[] { Styled(train, e), Styled(distill, e) })
            .Concat(RestateRows().Select(e => Styled(distill, e)))
            .ToList();
        var dataset = TokenizedDataset.Create(examples, tokenizer, null, 128, 127, SequenceFormat.Dskd, SequenceFormat.Dskd);
        var eos = TokenizedDataset.PadId(tokenizer);
        var config = new Gpt2Config
        {
            ModelType = "gpt2",
            VocabSize = tokenizer.VocabSize,
            HiddenSize = settings.SeedHidden,
            NumHiddenLayers = settings.SeedLayers,
            NumAttentionHeads = Math.Max(1, settings.SeedHidden / 32),
            MaxPositionEmbeddings = 128,
            EosTokenIds = [eos],
            BosTokenId = eos,
        };
        using var model = AutoCausalLM.FromConfig(config, settings.Seeds[0], device: device);
        model.train();
        var trainer = trainers.Create(model, objectives.Create("sft"), null, o =>
        {
            o.OutputDirectory = Path.Combine(settings.OutputDirectory, "seed-training");
            o.MaxSteps = settings.SeedSteps;
            o.Epochs = int.MaxValue / 2;
            o.LearningRate = settings.SeedLearningRate;
            o.WarmupRatio = 0.05;
            o.MinLearningRate = 1e-5;
            o.SaveCheckpoints = false;
            o.EvaluateAtEpochEnd = false;
            o.Seed = settings.Seeds[0];
        });
        trainer.Progress = new CallbackProgress<TrainingProgress>(p => OnProgress?.Invoke(new SdftSampleProgress("training the seed model (general split)", p.Step, p.TotalSteps, p.Loss)));
        var result = trainer.Train(new DistillationBatchSource(dataset, new BatchSampler(dataset.Count, 32, settings.Seeds[0])), cancellationToken: cancellationToken);
        if (result.Status == TrainingStatus.Cancelled)
        {
            throw new OperationCanceledException("Cancelled while training the seed model.");
        }

        var temp = dir + ".tmp-" + Guid.NewGuid().ToString("N");
        model.SavePretrained(temp);
        BundledData.WriteTokenizer(BundledTokenizer.Bpe, temp);
        File.WriteAllText(Path.Combine(temp, FingerprintFile), fingerprint);
        if (Directory.Exists(dir))
        {
            Directory.Delete(dir, recursive: true);
        }

        Directory.Move(temp, dir);
        return (dir, false);
    }

    /// <summary>A synchronous <see cref="IProgress{T}"/> (System.Progress posts to the thread pool).</summary>
    private sealed class CallbackProgress<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }
}
