using System.Diagnostics;
using System.Globalization;
using System.Text;
using Distill.Data;
using Distill.Eval.Evaluation;
using Distill.Eval.Metrics;
using Distill.Generation;
using Distill.IO;
using Distill.Models;
using Distill.Training;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Distill.OfflineTeacher;

/// <summary>One row of the comparison.</summary>
/// <param name="Run">teacher, online (the teacher in the training process) or cached k = ….</param>
/// <param name="K">The cache width, or null.</param>
/// <param name="ExactMatch">DSKD exact match (×100) of greedy answers on the held-out test examples.</param>
/// <param name="RougeL">ROUGE-L (×100).</param>
/// <param name="StepMs">Mean wall time of one training step (ms), or null for the teacher.</param>
/// <param name="PeakRssMb">The process's peak resident set size while the run trained (MB; the high-water mark reset at the run's start), or null.</param>
/// <param name="CacheBytes">The cache's size on disk, or null.</param>
/// <param name="CacheBytesPerToken">Cache bytes per scored token, or null.</param>
/// <param name="CacheWriteSeconds">Time to fill the cache with the teacher, or null.</param>
public sealed record OfflineTeacherRow(string Run, int? K, double ExactMatch, double RougeL, double? StepMs, double? PeakRssMb, long? CacheBytes, double? CacheBytesPerToken, double? CacheWriteSeconds);

/// <summary>What the comparison produced.</summary>
/// <param name="Rows">Teacher, online student, one cached student per k.</param>
/// <param name="TeacherDirectory">The teacher's HF folder.</param>
/// <param name="TeacherTrainedHere">Whether the teacher was trained by this sample (no shipped teacher).</param>
/// <param name="ScoredTokens">Scored (answer) tokens of the training set: what a cache stores.</param>
/// <param name="Steps">Training steps per student run.</param>
/// <param name="Elapsed">Wall time.</param>
public sealed record OfflineTeacherReport(IReadOnlyList<OfflineTeacherRow> Rows, string TeacherDirectory, bool TeacherTrainedHere, long ScoredTokens, int Steps, TimeSpan Elapsed)
{
    /// <summary>Gets a row by name.</summary>
    /// <param name="run">The row's <see cref="OfflineTeacherRow.Run"/>.</param>
    /// <returns>The row.</returns>
    public OfflineTeacherRow this[string run] => Rows.Single(r => r.Run == run);

    /// <summary>The table as Markdown.</summary>
    /// <returns>The table.</returns>
    public string ToMarkdown()
    {
        static string F(double? v, string format) => v is double d ? d.ToString(format, CultureInfo.InvariantCulture) : "";
        var b = new StringBuilder();
        b.AppendLine("| run | EM | ROUGE-L | step ms | peak RSS MB | cache MB | cache bytes/token | cache write s |");
        b.AppendLine("| --- | --- | --- | --- | --- | --- | --- | --- |");
        foreach (var r in Rows)
        {
            b.AppendLine(CultureInfo.InvariantCulture, $"| {r.Run} | {r.ExactMatch:F1} | {r.RougeL:F1} | {F(r.StepMs, "F1")} | {F(r.PeakRssMb, "F0")} | {F(r.CacheBytes / 1e6, "F2")} | {F(r.CacheBytesPerToken, "F0")} | {F(r.CacheWriteSeconds, "F1")} |");
        }

        return b.ToString();
    }
}

/// <summary>
/// Caches a teacher's top-k once, trains a student from each cache (<c>sparse_forward_kl</c>) and one online with the teacher
/// in the process (<c>forward_kl</c>, same α = 0.5 and T = 1), and compares exact match, step time, peak RSS and cache size.
/// </summary>
public sealed class OfflineTeacherPipeline(OfflineTeacherSettings settings, ILoggerFactory? loggerFactory = null)
{
    /// <summary>The teacher's row.</summary>
    public const string TeacherRow = "teacher";

    /// <summary>The online student's row.</summary>
    public const string OnlineRow = "online (teacher in process)";

    private readonly ILoggerFactory loggers = loggerFactory ?? NullLoggerFactory.Instance;

    /// <summary>Gets or sets a progress line sink.</summary>
    public Action<string>? OnProgress { get; set; }

    /// <summary>The name of the row of a student trained from a cache of width <paramref name="k"/>.</summary>
    /// <param name="k">The cache width.</param>
    /// <returns>The row name.</returns>
    public static string CachedRow(int k) => string.Create(CultureInfo.InvariantCulture, $"cached k = {k}");

    /// <summary>Runs the comparison and writes <c>results.md</c> into the run folder.</summary>
    /// <returns>The report.</returns>
    public OfflineTeacherReport Run()
    {
        var clock = Stopwatch.StartNew();
        Directory.CreateDirectory(settings.OutputDirectory);
        var services = new ServiceCollection();
        services.AddSingleton(loggers);
        services.AddSingleton(typeof(ILogger<>), typeof(Logger<>));
        services.AddDistill(o =>
        {
            o.Seed = settings.Seed;
            o.DType = "float32";
            o.Threads = settings.Threads;
        })
            .AddDistillLosses(o =>
            {
                o.Divergence.Temperature = 1.0; // the cache holds temperature-1 log-probs; compare like with like
                o.Divergence.KdRate = 0.5;
                o.Sparse.KdRate = 0.5;
            })
            .AddDistillTrainer(o =>
            {
                o.Seed = settings.Seed;
                o.Precision = TrainingPrecision.Float32;
                o.WarmupRatio = 0.05;
                o.Schedule = LearningRateScheduleKind.Cosine;
                o.MinLearningRate = 1e-5;
                o.MaxGradNorm = 1.0;
                o.SaveCheckpoints = false;
                o.TensorBoard = false;
                o.LogEverySteps = 10;
            });
        using var provider = services.BuildServiceProvider();
        _ = provider.GetRequiredService<IDistillRuntime>(); // applies the seed and thread settings
        var objectives = provider.GetRequiredService<IObjectiveFactory>();
        var trainers = provider.GetRequiredService<IDistillationTrainerFactory>();

        // 1. Teacher (shipped HF folder, --teacher, or trained here and kept in the run folder) and data.
        var (teacherDir, trainHere) = TeacherFolder();
        var tokenizer = trainHere ? BundledData.TokenizerA() : HfTokenizer.FromPretrained(teacherDir);
        var tasks = new HashSet<string>(settings.Tasks, StringComparer.Ordinal);
        List<TextExample> Split(BundledSplit split) =>
            [.. BundledData.Load(split).Where(e => e.Task is { } t && tasks.Contains(t)).Select(InstructionTemplate.Compact.Apply)];
        var trainSet = TokenizedDataset.Create(Split(BundledSplit.Train), tokenizer, null, settings.MaxLength, settings.MaxLength / 2);
        var testSet = TokenizedDataset.Create(Split(BundledSplit.Test).Take(settings.EvalExamples), tokenizer, null, settings.MaxLength, settings.MaxLength / 2);
        var batches = new DistillationBatchSource(trainSet, new BatchSampler(trainSet.Count, settings.BatchSize, settings.Seed));
        var examples = TeacherCacheExample.FromDataset(trainSet);
        var scoredTokens = examples.Sum(e => (long)e.ScoredPositions.Count);
        var teacher = trainHere ? TrainTeacher(teacherDir, tokenizer, batches, objectives, trainers) : AutoCausalLM.FromPretrained(teacherDir);
        teacher.eval();
        var eos = TokenizedDataset.PadId(tokenizer);
        var rows = new List<OfflineTeacherRow>();
        var (tem, trouge) = Score(teacher, testSet, eos);
        rows.Add(new OfflineTeacherRow(TeacherRow, null, tem, trouge, null, null, null, null, null));

        // 2. One cache per k: the teacher runs once over the training set.
        var ks = settings.K.Select(k => Math.Min(k, tokenizer.VocabSize)).Distinct().ToList();
        var caches = new List<(int K, string Dir, long Bytes, double Seconds)>();
        foreach (var k in ks)
        {
            var dir = Path.Combine(settings.OutputDirectory, string.Create(CultureInfo.InvariantCulture, $"cache-k{k}"));
            if (Directory.Exists(dir))
            {
                Directory.Delete(dir, recursive: true);
            }

            OnProgress?.Invoke($"caching the teacher's top-{k} over {trainSet.Count} examples ({scoredTokens} answer tokens)");
            var watch = Stopwatch.StartNew();
            TeacherCacheWriter.BuildAsync(dir, Identity(tokenizer, k), trainSet, new LocalModelTopKProducer(teacher, Path.GetFileName(teacherDir)),
                new TeacherCacheWriterOptions { RowsPerChunk = 512, BatchSize = settings.BatchSize }, logger: loggers.CreateLogger("Distill.OfflineTeacher")).GetAwaiter().GetResult();
            var seconds = watch.Elapsed.TotalSeconds;
            var bytes = Directory.EnumerateFiles(dir).Sum(f => new FileInfo(f).Length);
            caches.Add((k, dir, bytes, seconds));
        }

        // 3. Online: the teacher forwards every batch inside the training process.
        rows.Add(TrainStudent(OnlineRow, null, objectives.Create("forward_kl"), new LocalModelTeacher(teacher), testSet, batches, eos, trainers, null));
        teacher.Dispose();
        GC.Collect();

        // 4. From each cache: no teacher in the process; each batch's targets are read from the memory-mapped cache.
        foreach (var (k, dir, bytes, seconds) in caches)
        {
            using var cached = new CachedTopKTeacher(TeacherCacheReader.Open(dir, new TeacherCacheExpectation
            {
                DatasetHash = TeacherCacheHashes.Dataset(examples),
                TokenizerHash = TeacherCacheHashes.Tokenizer(tokenizer),
                Template = InstructionTemplate.Compact.Name,
                K = k,
            }));
            rows.Add(TrainStudent(CachedRow(k), k, objectives.Create("sparse_forward_kl"), cached, testSet, batches, eos, trainers, (bytes, (double)bytes / scoredTokens, seconds)));
        }

        var report = new OfflineTeacherReport(rows, teacherDir, trainHere, scoredTokens, settings.Steps, clock.Elapsed);
        AtomicFile.WriteAllText(Path.Combine(settings.OutputDirectory, "results.md"), report.ToMarkdown());
        return report;
    }

    private static TeacherCacheIdentity Identity(HfTokenizer tokenizer, int k) => new()
    {
        Teacher = "offline-teacher-sample",
        TokenizerHash = TeacherCacheHashes.Tokenizer(tokenizer),
        Template = InstructionTemplate.Compact.Name,
        K = k,
    };

    private (string Directory, bool TrainHere) TeacherFolder()
    {
        if (settings.TeacherPath is not null)
        {
            return (Path.GetFullPath(settings.TeacherPath), false);
        }

        // The bundled data's shipped teacher (the quickstart's `--dataset bundled` teacher), found from the working directory or any folder above it.
        for (var dir = settings.FindShippedTeacher ? new DirectoryInfo(Directory.GetCurrentDirectory()) : null; dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, OfflineTeacherSettings.ShippedTeacher);
            if (File.Exists(Path.Combine(candidate, "config.json")))
            {
                return (candidate, false);
            }
        }

        return (Path.GetFullPath(Path.Combine(settings.OutputDirectory, "teacher")), true);
    }

    private CausalLM TrainTeacher(string dir, HfTokenizer tokenizer, IBatchSource batches, IObjectiveFactory objectives, IDistillationTrainerFactory trainers)
    {
        var stamp = Path.Combine(dir, "offline-teacher-sample.json");
        var fingerprint = string.Create(CultureInfo.InvariantCulture, $"{{\"layers\":{settings.TeacherLayers},\"hidden\":{settings.TeacherHidden},\"steps\":{settings.TeacherSteps},\"batch\":{settings.BatchSize},\"seed\":{settings.Seed},\"tasks\":\"{string.Join(",", settings.Tasks)}\"}}");
        if (File.Exists(stamp) && File.ReadAllText(stamp) == fingerprint)
        {
            return AutoCausalLM.FromPretrained(dir);
        }

        OnProgress?.Invoke($"no shipped teacher ({OfflineTeacherSettings.ShippedTeacher}): training a {settings.TeacherLayers}x{settings.TeacherHidden} teacher for {settings.TeacherSteps} steps");
        var teacher = AutoCausalLM.FromConfig(Config(tokenizer, settings.TeacherLayers, settings.TeacherHidden), settings.Seed);
        trainers.Create(teacher, objectives.Create("sft"), null, o =>
        {
            o.OutputDirectory = Path.Combine(settings.OutputDirectory, "teacher-training");
            o.MaxSteps = settings.TeacherSteps;
            o.LearningRate = 3e-3;
        }).Train(batches);
        var temp = dir + ".tmp-" + Guid.NewGuid().ToString("N");
        teacher.SavePretrained(temp, tokenizer);
        File.WriteAllText(Path.Combine(temp, Path.GetFileName(stamp)), fingerprint);
        if (Directory.Exists(dir))
        {
            Directory.Delete(dir, recursive: true);
        }

        Directory.Move(temp, dir);
        return teacher;
    }

    private Gpt2Config Config(HfTokenizer tokenizer, int layers, int hidden) => Distill.Samples.SampleModels.TinyGpt2(tokenizer, layers, hidden, settings.MaxLength);

    private OfflineTeacherRow TrainStudent(string name, int? k, IDistillationObjective objective, ITeacher teacher, TokenizedDataset testSet, IBatchSource batches, long eos, IDistillationTrainerFactory trainers, (long Bytes, double PerToken, double Seconds)? cache)
    {
        OnProgress?.Invoke($"training the student: {name} ({objective.Name}, {settings.Steps} steps)");
        using var student = AutoCausalLM.FromConfig(Config(TokenizerOf(testSet), settings.StudentLayers, settings.StudentHidden), settings.Seed + 1);
        var trainer = trainers.Create(student, objective, teacher, o =>
        {
            o.OutputDirectory = Path.Combine(settings.OutputDirectory, "runs", name.Replace(' ', '-').Replace('=', '-').Replace("(", "").Replace(")", ""));
            o.MaxSteps = settings.Steps;
            o.LearningRate = 3e-3;
        });
        double seconds;
        double peak;
        using (var rss = new RssSampler())
        {
            var watch = Stopwatch.StartNew();
            trainer.Train(batches);
            seconds = watch.Elapsed.TotalSeconds;
            peak = rss.PeakBytes / 1e6;
        }

        var (em, rouge) = Score(student, testSet, eos);
        return new OfflineTeacherRow(name, k, em, rouge, seconds * 1000 / settings.Steps, peak, cache?.Bytes, cache?.PerToken, cache?.Seconds);
    }

    private static HfTokenizer TokenizerOf(TokenizedDataset set) => set.StudentTokenizer;

    private (double ExactMatch, double RougeL) Score(CausalLM model, TokenizedDataset set, long eos)
    {
        OnProgress?.Invoke("scoring greedy answers on the test examples");
        var report = GenerationEvaluation.Evaluate(model, set, [new RougeLMetric(), new DskdExactMatchMetric()], new GenerationEvaluationOptions
        {
            Seeds = [settings.Seed],
            BatchSize = 50,
            StopText = null,
            Generation = new GenerationOptions { MaxNewTokens = 16, EosTokenIds = [eos], PadTokenId = eos },
        }, loggers.CreateLogger<SeededEvaluator>());
        return (report.Metrics[DskdExactMatchMetric.MetricName].Mean, report.Metrics[RougeLMetric.MetricName].Mean);
    }

    /// <summary>
    /// The process's peak resident set size over a run: on Linux the kernel's high-water mark (<c>VmHWM</c>), reset at the
    /// start (<c>/proc/self/clear_refs</c>); elsewhere the working set sampled every 20 ms.
    /// </summary>
    private sealed class RssSampler : IDisposable
    {
        private readonly Timer? timer;
        private readonly bool kernel;
        private long peak;

        public RssSampler()
        {
            try
            {
                File.WriteAllText("/proc/self/clear_refs", "5");
                kernel = HighWaterMarkKb() > 0;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                kernel = false;
            }

            if (!kernel)
            {
                Sample();
                timer = new Timer(_ => Sample(), null, 0, 20);
            }
        }

        public long PeakBytes
        {
            get
            {
                if (kernel)
                {
                    return HighWaterMarkKb() * 1024;
                }

                Sample();
                return Interlocked.Read(ref peak);
            }
        }

        public void Dispose() => timer?.Dispose();

        private static long HighWaterMarkKb()
        {
            foreach (var line in File.ReadLines("/proc/self/status"))
            {
                if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                {
                    return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);
                }
            }

            return 0;
        }

        private void Sample()
        {
            using var self = Process.GetCurrentProcess();
            var now = self.WorkingSet64;
            long seen;
            do
            {
                seen = Interlocked.Read(ref peak);
            }
            while (now > seen && Interlocked.CompareExchange(ref peak, now, seen) != seen);
        }
    }
}
