using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Distill.Data;
using Distill.Data.Synthesis;
using Distill.Eval.Diagnostics;
using Distill.Eval.Evaluation;
using Distill.Eval.Metrics;
using Distill.Generation;
using Distill.Models;
using Distill.Training;
using Distill.Training.Sources;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using static TorchSharp.torch;

namespace Distill.Atkd;

/// <summary>A progress event: the phase, units done of the phase's total.</summary>
/// <param name="Phase">Human-readable phase name.</param>
/// <param name="Done">Units done.</param>
/// <param name="Total">Units in the phase.</param>
public readonly record struct AtkdProgress(string Phase, int Done, int Total);

/// <summary>
/// ATKD's sample-source comparison on the bundled data: one teacher, its greedy answers to the training prompts written once
/// as a SeqKD file, then the same random student trained with the ATKD objective from each source (gt, teacher, student,
/// mix_token, mix_request_teacher, mix_request_gt) under each seed, and scored on the test examples.
/// </summary>
public sealed class AtkdComparison(AtkdSettings settings, ILoggerFactory? loggerFactory = null)
{
    /// <summary>The teacher's row name.</summary>
    public const string TeacherRow = "teacher (reference)";

    private const string FingerprintFile = "atkd-teacher.json";
    private readonly ILoggerFactory loggers = loggerFactory ?? NullLoggerFactory.Instance;

    /// <summary>Gets or sets the progress callback (called on the pipeline's thread).</summary>
    public Action<AtkdProgress>? OnProgress { get; set; }

    /// <summary>Runs the comparison and writes <see cref="AtkdReport.MarkdownFile"/> and <see cref="AtkdReport.JsonFile"/> to the run folder.</summary>
    /// <param name="cancellationToken">Stops after the current step or batch.</param>
    /// <returns>The report.</returns>
    public AtkdReport Run(CancellationToken cancellationToken = default)
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
            // Tiny models: one thread avoids OpenMP synchronisation that costs more than it saves; a user teacher gets torch's default.
            o.Threads = settings.Threads ?? (settings.TeacherPath is null ? 1 : null);
        })
            .AddDistillLosses()
            .AddDistillTrainer(o =>
            {
                // ATKD's schedule (cosine, warmup 0.03, clipping 1.0) at a learning rate a random tiny student can learn with.
                o.LogEverySteps = 25;
                o.Schedule = LearningRateScheduleKind.Cosine;
                o.WarmupRatio = 0.03;
                o.MaxGradNorm = 1.0;
                o.WeightDecay = 0;
            });
        using var provider = services.BuildServiceProvider();
        var device = provider.GetRequiredService<IDistillRuntime>().Compute.Device;
        var objectives = provider.GetRequiredService<IObjectiveFactory>();
        var trainers = provider.GetRequiredService<IDistillationTrainerFactory>();
        var tasks = settings.Tasks is null ? null : new HashSet<string>(settings.Tasks, StringComparer.Ordinal);
        List<InstructionExample> Split(BundledSplit split) => [.. BundledData.Load(split).Where(e => tasks is null || (e.Task is { } t && tasks.Contains(t)))];
        var template = InstructionTemplate.Compact;

        // 1. The teacher: --teacher, the quickstart's shipped folder, or a small one trained here once and cached.
        var (teacher, tokenizer, teacherName) = PrepareTeacher(Split(BundledSplit.Train), template, objectives, trainers, device, cancellationToken);
        using var teacherModel = teacher;
        teacher.eval();
        var eos = TokenizedDataset.PadId(tokenizer);

        // 2. The teacher answers every training prompt once (greedy): a SeqKD file, reused by later runs.
        var train = Split(BundledSplit.Train).Take(settings.TrainExamples).ToList();
        var answersPath = Path.GetFullPath(Path.Combine(settings.OutputDirectory, "teacher-answers.jsonl"));
        var answers = TeacherAnswers(teacher, tokenizer, teacherName, train, answersPath, cancellationToken);
        var gtSet = TokenizedDataset.Create(train.Select(template.Apply), tokenizer, null, settings.MaxLength, settings.MaxLength / 2);
        if (answers.Records.Count == 0)
        {
            throw new InvalidOperationException($"The teacher answered none of the {train.Count} training prompts (every answer was empty; see {answersPath}.manifest.json). Use a trained teacher.");
        }

        var teacherSet = TokenizedDataset.Create(answers.ToInstructionExamples().Select(template.Apply), tokenizer, null, settings.MaxLength, settings.MaxLength / 2);
        var testSet = TokenizedDataset.Create(Split(BundledSplit.Test).Take(settings.EvalExamples).Select(template.Apply), tokenizer, null, settings.MaxLength, settings.MaxLength / 2);

        // 3. The teacher's own scores, then every source under every seed.
        var rows = new List<AtkdRow>();
        var (teacherEm, teacherRouge) = Generate(testSet, [settings.Seeds[0]], _ => teacher, eos, cancellationToken);
        var teacherLoss = TeacherForced(teacher, null, testSet).Loss;
        rows.Add(new AtkdRow(TeacherRow, teacherEm, teacherRouge, SeedStat.From([teacherLoss]), null, null, 0));
        var teacherWrapper = new LocalModelTeacher(teacher);
        foreach (var source in settings.Sources)
        {
            var name = AtkdSampleSourceNames.ToName(source);
            // The official data of each source: mix_request_gt and gt read the dataset's answers; every other source reads the
            // teacher-answer file (whose prompts the generating sources continue).
            var data = source is AtkdSampleSource.Gt or AtkdSampleSource.MixRequestGt ? gtSet : teacherSet;
            var students = new Dictionary<int, CausalLM>();
            try
            {
                var seconds = new List<double>();
                long batches = 0, generated = 0;
                foreach (var seed in settings.Seeds)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    var (student, time, statistics) = TrainStudent(source, seed, data, teacherWrapper, tokenizer, device, objectives, trainers, cancellationToken);
                    students[seed] = student;
                    seconds.Add(time);
                    batches += statistics.Batches;
                    generated += statistics.GeneratedBatches;
                }

                OnProgress?.Invoke(new AtkdProgress($"evaluating {name}", 0, 1));
                var (em, rouge) = Generate(testSet, settings.Seeds, seed => students[seed], eos, cancellationToken);
                var forced = settings.Seeds.Select(seed => TeacherForced(students[seed], teacher, testSet)).ToList();
                rows.Add(new AtkdRow(
                    name,
                    em,
                    rouge,
                    SeedStat.From([.. forced.Select(f => f.Loss)]),
                    SeedStat.From([.. forced.Select(f => f.Agreement!.Value * 100)]),
                    SeedStat.From(seconds),
                    batches == 0 ? 0 : 100.0 * generated / batches));
                OnProgress?.Invoke(new AtkdProgress($"evaluating {name}", 1, 1));
            }
            finally
            {
                foreach (var s in students.Values)
                {
                    s.Dispose();
                }
            }
        }

        var report = new AtkdReport(rows, settings.Seeds, testSet.Count, train.Count, answers.Records.Count, settings.Steps, teacherName, answersPath, clock.Elapsed);
        report.Write(settings.OutputDirectory);
        return report;
    }

    private (CausalLM Model, HfTokenizer Tokenizer, string Name) PrepareTeacher(
        List<InstructionExample> train, InstructionTemplate template, IObjectiveFactory objectives, IDistillationTrainerFactory trainers, Device device, CancellationToken cancellationToken)
    {
        var folder = settings.TeacherPath ?? Path.Combine(AppContext.BaseDirectory, "teachers", AtkdSettings.ShippedTeacher);
        if (settings.TeacherPath is not null || (settings.UseShippedTeacher && File.Exists(Path.Combine(folder, "config.json"))))
        {
            var full = Path.GetFullPath(folder);
            return (AutoCausalLM.FromPretrained(full, device: device), HfTokenizer.FromPretrained(full, loggers.CreateLogger<HfTokenizer>()), full);
        }

        // No teacher folder: train a small one on the whole training split (SFT) and cache it as an HF folder in the run folder.
        var tokenizer = BundledData.TokenizerA();
        var dir = Path.GetFullPath(Path.Combine(settings.OutputDirectory, "teacher"));
        var fingerprint = JsonSerializer.Serialize(new
        {
            layers = settings.TeacherLayers,
            hidden = settings.TeacherHidden,
            steps = settings.TeacherSteps,
            batch = settings.BatchSize,
            maxLength = settings.MaxLength,
            tasks = settings.Tasks is null ? "all" : string.Join(",", settings.Tasks.Order(StringComparer.Ordinal)),
        });
        if (File.Exists(Path.Combine(dir, FingerprintFile)) && File.ReadAllText(Path.Combine(dir, FingerprintFile)) == fingerprint)
        {
            return (AutoCausalLM.FromPretrained(dir, device: device), tokenizer, dir + " (trained by an earlier run)");
        }

        var teacher = AutoCausalLM.FromConfig(Config(tokenizer, settings.TeacherLayers, settings.TeacherHidden), seed: 0, device: device);
        var set = TokenizedDataset.Create(train.Select(template.Apply), tokenizer, null, settings.MaxLength, settings.MaxLength / 2);
        var trainer = trainers.Create(teacher, objectives.Create("sft"), null, o =>
        {
            o.OutputDirectory = Path.Combine(settings.OutputDirectory, "teacher-training");
            o.MaxSteps = settings.TeacherSteps;
            o.LearningRate = 3e-3;
            o.Seed = 0;
            o.SaveCheckpoints = false;
            o.EvaluationStrategy = EvaluationStrategy.No;
        });
        trainer.Progress = Progress("training the teacher (no teacher folder found; cached for later runs)");
        var result = trainer.Train(new DistillationBatchSource(set, new BatchSampler(set.Count, settings.BatchSize, 0)), cancellationToken: cancellationToken);
        if (result.Status == TrainingStatus.Cancelled)
        {
            throw new OperationCanceledException("Cancelled while training the teacher.");
        }

        var temp = dir + ".tmp-" + Guid.NewGuid().ToString("N");
        teacher.SavePretrained(temp, tokenizer);
        File.WriteAllText(Path.Combine(temp, FingerprintFile), fingerprint);
        if (Directory.Exists(dir))
        {
            Directory.Delete(dir, recursive: true);
        }

        Directory.Move(temp, dir);
        teacher.eval();
        return (teacher, tokenizer, dir + " (trained now)");
    }

    private SeqKdFile TeacherAnswers(CausalLM teacher, HfTokenizer tokenizer, string teacherName, List<InstructionExample> train, string path, CancellationToken cancellationToken)
    {
        var options = new SeqKdOptions
        {
            Template = "compact",
            TeacherName = teacherName,
            MaxNewTokens = settings.MaxNewTokens,
            BatchSize = 64,
            ChunkSize = 256,
        };
        var generator = new SeqKdGenerator(teacher, tokenizer, options, loggers.CreateLogger<SeqKdGenerator>())
        {
            Progress = new CallbackProgress<SeqKdProgress>(p => OnProgress?.Invoke(new AtkdProgress("teacher answers (SeqKD file)", p.PromptsDone, p.PromptsTotal))),
        };
        SeqKdResult result;
        try
        {
            result = generator.Run(train, path, cancellationToken);
        }
        catch (InvalidDataException)
        {
            // A file from another teacher or other settings: this run's cache, so regenerate it.
            foreach (var stale in new[] { path, SeqKdDataset.ManifestPath(path), path + ".partial", path + ".partial.progress" })
            {
                File.Delete(stale);
            }

            result = generator.Run(train, path, cancellationToken);
        }

        cancellationToken.ThrowIfCancellationRequested();
        return SeqKdDataset.Read(result.OutputPath);
    }

    private (CausalLM Student, double Seconds, SampleSourceStatistics Statistics) TrainStudent(
        AtkdSampleSource source, int seed, TokenizedDataset data, ITeacher teacher, HfTokenizer tokenizer, Device device, IObjectiveFactory objectives, IDistillationTrainerFactory trainers, CancellationToken cancellationToken)
    {
        var name = AtkdSampleSourceNames.ToName(source);
        var student = AutoCausalLM.FromConfig(Config(tokenizer, settings.StudentLayers, settings.StudentHidden), seed, device: device);
        student.train();
        var output = Path.Combine(settings.OutputDirectory, "runs", name, "seed-" + seed.ToString(CultureInfo.InvariantCulture));
        if (Directory.Exists(output))
        {
            Directory.Delete(output, recursive: true); // a fresh run each time; resume is the trainer's job, shown in its tests
        }

        var trainer = trainers.Create(student, objectives.Create("atkd"), teacher, o =>
        {
            o.OutputDirectory = output;
            o.MaxSteps = settings.Steps;
            o.LearningRate = settings.LearningRate;
            o.Seed = seed;
            o.SaveCheckpoints = false;
            o.EvaluationStrategy = EvaluationStrategy.No;
        });
        // The official constants of each source (ratios 0.5, greedy), with this run's answer length instead of 256 / 128.
        var options = SampleSourceOptions.Atkd(source);
        options.MaxNewTokens = settings.MaxNewTokens;
        options.LogEveryBatches = 0;
        var sampleSource = SampleSources.Create(source, student, teacher, options, loggers.CreateLogger<AtkdComparison>());
        trainer.BatchTransforms.Add(sampleSource);
        trainer.Progress = Progress(string.Create(CultureInfo.InvariantCulture, $"{name}, seed {seed}"));
        var clock = Stopwatch.StartNew();
        var result = trainer.Train(new DistillationBatchSource(data, new BatchSampler(data.Count, Math.Min(settings.BatchSize, data.Count), seed)), cancellationToken: cancellationToken);
        var seconds = clock.Elapsed.TotalSeconds;
        if (result.Status == TrainingStatus.Cancelled)
        {
            student.Dispose();
            throw new OperationCanceledException($"Cancelled while training {name}.");
        }

        student.eval();
        return (student, seconds, sampleSource.Statistics);
    }

    private Gpt2Config Config(HfTokenizer tokenizer, int layers, int hidden) => Distill.Samples.SampleModels.TinyGpt2(tokenizer, layers, hidden, settings.MaxLength);

    /// <summary>
    /// DSKD exact match and ROUGE-L (×100) of greedy answers, through <see cref="SeededEvaluator"/>: its seeds are the training seeds, and
    /// the generation for seed s comes from the student trained with seed s, so its mean ± std is the spread over training runs.
    /// </summary>
    private (SeedStat ExactMatch, SeedStat RougeL) Generate(TokenizedDataset set, IReadOnlyList<int> seeds, Func<int, CausalLM> modelOf, long eos, CancellationToken cancellationToken)
    {
        var evaluator = new SeededEvaluator([new DskdExactMatchMetric(), new RougeLMetric()], new EvaluatorOptions { Seeds = [.. seeds], BatchSize = 50, StopText = null }, loggers.CreateLogger<SeededEvaluator>());
        var examples = set.Examples.Select((e, i) => new EvalExample(i.ToString(CultureInfo.InvariantCulture), e.Prompt, e.References)).ToList();
        var report = evaluator.Evaluate(examples, (batch, seed, _) =>
        {
            var model = modelOf(seed);
            var indices = batch.Select(x => int.Parse(x.Id, CultureInfo.InvariantCulture)).ToList();
            using var scope = NewDisposeScope();
            using var prompts = set.CollatePrompts(indices);
            using var generated = TextGenerator.Generate(model, prompts.InputIds, prompts.AttentionMask, new GenerationOptions { MaxNewTokens = settings.MaxNewTokens, EosTokenIds = [eos], PadTokenId = eos });
            var ids = generated.GeneratedIds.cpu();
            return [.. Enumerable.Range(0, indices.Count).Select(b => set.StudentTokenizer.Decode(ids[b, ..(int)generated.Lengths[b]].data<long>().Select(i => (int)i), skipSpecialTokens: true))];
        }, cancellationToken);
        static SeedStat Stat(MetricSummary m) => new(m.Mean, m.StandardDeviation, m.PerSeed);
        return (Stat(report.Metrics[DskdExactMatchMetric.MetricName]), Stat(report.Metrics[RougeLMetric.MetricName]));
    }

    /// <summary>Teacher-forced answer loss of <paramref name="model"/> on the references, and its top-1 agreement with the teacher.</summary>
    private static (double Loss, double? Agreement) TeacherForced(CausalLM model, CausalLM? teacher, TokenizedDataset set)
    {
        using var noGrad = no_grad();
        var nll = default(PerplexityResult);
        var diag = default(DiagnosticsResult);
        for (var start = 0; start < set.Count; start += 50)
        {
            using var scope = NewDisposeScope();
            using var batch = set.Collate([.. Enumerable.Range(start, Math.Min(50, set.Count - start))]);
            var device = model.Device;
            var input = new CausalLMInput { InputIds = batch.InputIds.to(device), AttentionMask = batch.AttentionMask.to(device), PositionIds = batch.PositionIds?.to(device) };
            var logits = model.Forward(input).Logits!;
            var labels = batch.Labels.to(device);
            nll = nll.Add(Perplexity.FromLogits(logits, labels));
            if (teacher is not null)
            {
                var d = DistillationDiagnostics.Compute(logits, teacher.Forward(input).Logits!, labels);
                diag = diag.TokenCount == 0 ? d : diag.Add(d);
            }
        }

        return (nll.MeanNll, teacher is null ? null : diag.Top1Agreement);
    }

    private CallbackProgress<TrainingProgress> Progress(string phase) =>
        new(p => OnProgress?.Invoke(new AtkdProgress(phase, p.Step, p.TotalSteps)));

    private sealed class CallbackProgress<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }
}
