using System.Security.Cryptography;
using System.Text.Json;
using Distill.Tests.Shared;
using Distill.Training;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using static TorchSharp.torch;

namespace Distill.Core.Tests.Training;

/// <summary>Power-loss durability of checkpoints: manifest, torn-checkpoint fallback, finite weights, keep policy, metrics resume.</summary>
[Collection("Sequential")]
public class CheckpointDurabilityTests
{
    private const int Vocab = 13;
    private const int Hidden = 16;

    private static TrainingOptions Options(string dir, Action<TrainingOptions>? change = null)
    {
        var o = new TrainingOptions { OutputDirectory = dir, LearningRate = 5e-3, LogEverySteps = 1, TensorBoard = false, Seed = 7 };
        change?.Invoke(o);
        return o;
    }

    /// <summary>A checkpoint like the trainer's: weights, optimizer-like blob, rng, options, state (last).</summary>
    private static string SaveFake(CheckpointStore store, int step, float weight = 1f)
    {
        return store.Save(step, dir =>
        {
            Directory.CreateDirectory(Path.Combine(dir, CheckpointLayout.StudentFolder));
            using var w = full(new long[] { 3, 4 }, weight);
            NamedTensorFile.Write(Path.Combine(dir, CheckpointLayout.StudentFolder, StateDictCheckpointWriter.FileName), [new("lm_head.weight", w)]);
            File.WriteAllBytes(Path.Combine(dir, CheckpointLayout.OptimizerFile), [.. Enumerable.Range(0, 300).Select(i => (byte)i)]);
            using var rng = zeros(8, dtype: ScalarType.Byte);
            NamedTensorFile.Write(Path.Combine(dir, CheckpointLayout.RngFile), [new("torch_cpu", rng)]);
            CheckpointStore.WriteJson(Path.Combine(dir, CheckpointLayout.TrainingOptionsFile), new TrainingOptions());
            CheckpointStore.WriteJson(Path.Combine(dir, CheckpointLayout.TrainerStateFile), new TrainerState { GlobalStep = step });
        });
    }

    [Fact]
    public void Save_WritesManifestWithLengthAndSha256OfEveryFile()
    {
        using var tmp = new TempFolder();
        var store = new CheckpointStore(tmp.Path, NullLogger.Instance);
        var dir = SaveFake(store, 3);

        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, CheckpointLayout.ManifestFile)));
        Assert.Equal(3, doc.RootElement.GetProperty("step").GetInt32());
        Assert.True(doc.RootElement.GetProperty("weights_finite").GetBoolean());
        var files = doc.RootElement.GetProperty("files").EnumerateArray().ToDictionary(e => e.GetProperty("path").GetString()!, e => e);
        var expected = new[] { "optimizer.bin", "rng.bin", "student/weights.bin", "trainer_state.json", "training_options.json" };
        Assert.Equal(expected, files.Keys.Order(StringComparer.Ordinal));
        foreach (var (rel, e) in files)
        {
            var bytes = File.ReadAllBytes(Path.Combine(dir, rel));
            Assert.Equal(bytes.Length, e.GetProperty("bytes").GetInt64());
            Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(bytes)), e.GetProperty("sha256").GetString());
        }

        Assert.Null(CheckpointStore.Inspect(dir));
        Assert.Empty(Directory.EnumerateDirectories(tmp.Path, ".tmp-*"));
    }

    /// <summary>The six ways a power loss (or a bad disk) tears a renamed checkpoint folder.</summary>
    public static TheoryData<string> TornKinds => new()
    {
        "optimizer-truncated", "optimizer-zero-length", "weights-byte-flipped", "state-truncated", "rng-missing", "manifest-torn",
    };

    [Theory]
    [MemberData(nameof(TornKinds))]
    public void Resolve_Latest_SkipsTornCheckpointWithWarningNamingIt(string kind)
    {
        using var tmp = new TempFolder();
        var logger = new CapturingLogger();
        var store = new CheckpointStore(tmp.Path, logger);
        SaveFake(store, 1);
        var intact = SaveFake(store, 2);
        var torn = SaveFake(store, 3);
        string damagedFile;
        switch (kind)
        {
            case "optimizer-truncated":
                damagedFile = Path.Combine(torn, CheckpointLayout.OptimizerFile);
                File.WriteAllBytes(damagedFile, File.ReadAllBytes(damagedFile)[..100]);
                break;
            case "optimizer-zero-length":
                damagedFile = Path.Combine(torn, CheckpointLayout.OptimizerFile);
                File.WriteAllBytes(damagedFile, []);
                break;
            case "weights-byte-flipped":
                damagedFile = Path.Combine(torn, CheckpointLayout.StudentFolder, StateDictCheckpointWriter.FileName);
                var bytes = File.ReadAllBytes(damagedFile);
                bytes[^5] ^= 0x40;
                File.WriteAllBytes(damagedFile, bytes);
                break;
            case "state-truncated":
                damagedFile = Path.Combine(torn, CheckpointLayout.TrainerStateFile);
                File.WriteAllText(damagedFile, "{\"global_st");
                break;
            case "rng-missing":
                damagedFile = Path.Combine(torn, CheckpointLayout.RngFile);
                File.Delete(damagedFile);
                break;
            default:
                damagedFile = Path.Combine(torn, CheckpointLayout.ManifestFile);
                File.WriteAllText(damagedFile, "{\"format\": 1, \"files\": [");
                break;
        }

        Assert.Equal(intact, store.Resolve("latest"));
        var warning = Assert.Single(logger.Entries, e => e.Level == LogLevel.Warning && e.Message.Contains("is damaged", StringComparison.Ordinal));
        Assert.Contains(torn, warning.Message, StringComparison.Ordinal);

        // Naming the torn folder explicitly is an error that names the damaged file, not a silent fallback.
        var e = Assert.ThrowsAny<Exception>(() => store.Resolve(torn));
        Assert.True(e is InvalidDataException or DirectoryNotFoundException, e.ToString());
        Assert.Contains(kind == "state-truncated" ? CheckpointLayout.TrainerStateFile : Path.GetFileName(damagedFile), e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Resolve_Latest_AllDamaged_ThrowsNamingEach()
    {
        using var tmp = new TempFolder();
        var store = new CheckpointStore(tmp.Path, NullLogger.Instance);
        foreach (var step in new[] { 1, 2 })
        {
            var dir = SaveFake(store, step);
            File.WriteAllBytes(Path.Combine(dir, CheckpointLayout.OptimizerFile), [1, 2, 3]);
        }

        var e = Assert.Throws<InvalidDataException>(() => store.Resolve("latest"));
        Assert.Contains(CheckpointStore.FolderName(1), e.Message, StringComparison.Ordinal);
        Assert.Contains(CheckpointStore.FolderName(2), e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(float.NaN)]
    [InlineData(float.PositiveInfinity)]
    public void Save_NonFiniteWeights_RefusesNamingTensorAndStepAndWritesNothing(float bad)
    {
        using var tmp = new TempFolder();
        var store = new CheckpointStore(tmp.Path, NullLogger.Instance);
        SaveFake(store, 1);
        var e = Assert.Throws<NonFiniteCheckpointException>(() => SaveFake(store, 2, bad));
        Assert.Equal(2, e.Step);
        Assert.Equal("lm_head.weight", e.Tensor);
        Assert.Contains("step 2", e.Message, StringComparison.Ordinal);
        Assert.Contains("'lm_head.weight'", e.Message, StringComparison.Ordinal);
        Assert.Contains("student/weights.bin", e.Message, StringComparison.Ordinal);
        Assert.Contains("12 non-finite", e.Message, StringComparison.Ordinal);
        Assert.Equal([CheckpointStore.FolderName(1)], Directory.GetDirectories(tmp.Path).Select(Path.GetFileName));
    }

    [Fact]
    public void Save_NonFiniteSafetensorsWeights_Refused()
    {
        using var tmp = new TempFolder();
        var store = new CheckpointStore(tmp.Path, NullLogger.Instance);
        var e = Assert.Throws<NonFiniteCheckpointException>(() => store.Save(5, dir =>
        {
            using var a = ones(4);
            using var b = tensor(new[] { 1f, float.NegativeInfinity, 2f });
            Distill.IO.SafeTensors.Save(Path.Combine(dir, "student", "model.safetensors"), new Dictionary<string, Tensor> { ["a"] = a, ["b"] = b });
            CheckpointStore.WriteJson(Path.Combine(dir, CheckpointLayout.TrainerStateFile), new TrainerState { GlobalStep = 5 });
        }));
        Assert.Equal("b", e.Tensor);
        Assert.Equal("student/model.safetensors", e.File);
        Assert.Empty(Directory.GetDirectories(tmp.Path));
    }

    [Fact]
    public void Prune_NeverDeletesNewestIntactCheckpoint()
    {
        using var tmp = new TempFolder();
        var store = new CheckpointStore(tmp.Path, NullLogger.Instance);
        SaveFake(store, 1);
        var good = SaveFake(store, 2);
        var torn = SaveFake(store, 3);
        File.WriteAllBytes(Path.Combine(torn, CheckpointLayout.OptimizerFile), []);

        store.Prune(keepLast: 1, keepBest: 0, greaterIsBetter: false);

        Assert.Equal([CheckpointStore.FolderName(2), CheckpointStore.FolderName(3)], Directory.GetDirectories(tmp.Path).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        Assert.Equal(good, store.Resolve("latest"));
    }

    [Fact]
    public void Train_ResumeLatestWithTornNewestCheckpoint_ResumesFromPreviousIntactOne()
    {
        using var scope = NewDisposeScope();
        using var tmp = new TempFolder();
        var data = new SyntheticBatchSource(examples: 8, batchSize: 2, vocab: Vocab, seed: 11); // 4 steps per epoch
        TrainingOptions Opts() => Options(tmp.Path, o =>
        {
            o.MaxSteps = 4;
            o.SaveEverySteps = 1;
            o.KeepLastCheckpoints = 5;
        });
        using var cts = new CancellationTokenSource();
        var first = new DistillationTrainer(new TinyCausalLM(Vocab, Hidden, seed: 1), new SumCrossEntropyObjective(), null, Opts())
        {
            Progress = new SyncProgress<TrainingProgress>(p =>
            {
                if (p.Step == 3)
                {
                    cts.Cancel();
                }
            }),
        }.Train(data, cancellationToken: cts.Token);
        Assert.Equal(3, first.Steps);

        // Power loss after the rename of step 3, before its data reached the disk: optimizer.bin is torn. Before manifests
        // this failed inside the optimizer loader with an EndOfStreamException naming no file.
        var torn = Path.Combine(tmp.Path, "checkpoints", CheckpointStore.FolderName(3));
        var optimizer = Path.Combine(torn, CheckpointLayout.OptimizerFile);
        File.WriteAllBytes(optimizer, File.ReadAllBytes(optimizer)[..64]);

        var logger = new CapturingLogger<DistillationTrainer>();
        var steps = new List<int>();
        var resumed = new DistillationTrainer(new TinyCausalLM(Vocab, Hidden, seed: 2), new SumCrossEntropyObjective(), null, Opts(), logger)
        {
            Progress = new SyncProgress<TrainingProgress>(p => steps.Add(p.Step)),
        }.Train(data, resumeFrom: "latest");

        Assert.Equal(TrainingStatus.Completed, resumed.Status);
        Assert.Equal([3, 4], steps); // resumed after step 2, the newest intact checkpoint
        Assert.Contains(logger.Entries, e => e.Level == LogLevel.Warning && e.Message.Contains(torn, StringComparison.Ordinal) && e.Message.Contains(CheckpointLayout.OptimizerFile, StringComparison.Ordinal));
        Assert.Null(CheckpointStore.Inspect(Path.Combine(tmp.Path, "checkpoints", CheckpointStore.FolderName(3)))); // rewritten
    }

    [Fact]
    public void MetricsWriter_AfterResume_DropsRepeatedStepsAndMarksResume()
    {
        using var tmp = new TempFolder();
        using (var w = new TrainingMetricsWriter(tmp.Path, tensorBoard: false))
        {
            for (var step = 1; step <= 5; step++)
            {
                w.Write("train", step, 0, [new("loss", step)]);
            }

            w.Write("eval", 4, 0, [new("ppl", 9)]);
        }

        // The killed run also left a torn last line.
        File.AppendAllText(Path.Combine(tmp.Path, TrainingMetricsWriter.JsonlFile), "{\"kind\":\"train\",\"st");

        // Resumed from the step-3 checkpoint: the next record is step 4.
        using (var w = new TrainingMetricsWriter(tmp.Path, tensorBoard: false))
        {
            w.Write("train", 4, 0, [new("loss", 40)]);
            w.Write("train", 5, 0, [new("loss", 50)]);
        }

        var records = File.ReadAllLines(Path.Combine(tmp.Path, TrainingMetricsWriter.JsonlFile))
            .Select(l => JsonDocument.Parse(l).RootElement)
            .Select(r => (Kind: r.GetProperty("kind").GetString(), Step: r.GetProperty("step").GetInt32(), Dropped: r.TryGetProperty("dropped", out var d) ? d.GetInt32() : -1))
            .ToList();
        Assert.Equal(
            [("train", 1, -1), ("train", 2, -1), ("train", 3, -1), ("resume", 4, 4), ("train", 4, -1), ("train", 5, -1)],
            records);
    }

    [Fact]
    public void MetricsWriter_FreshFile_HasNoResumeMarker()
    {
        using var tmp = new TempFolder();
        using (var w = new TrainingMetricsWriter(tmp.Path, tensorBoard: false))
        {
            w.Write("train", 1, 0, [new("loss", 1)]);
        }

        Assert.Single(File.ReadAllLines(Path.Combine(tmp.Path, TrainingMetricsWriter.JsonlFile)));
    }

    private sealed class CapturingLogger<T> : CapturingLogger, ILogger<T>
    {
    }

    private class CapturingLogger : ILogger
    {
        public List<(LogLevel Level, string Message)> Entries { get; } = [];

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            Entries.Add((logLevel, formatter(state, exception)));
    }
}
