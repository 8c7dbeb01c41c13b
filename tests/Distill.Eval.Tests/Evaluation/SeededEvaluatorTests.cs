using Distill.Eval.Evaluation;
using Distill.Eval.Metrics;
using Distill.Tests.Shared;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Distill.Eval.Tests.Evaluation;

public sealed class SeededEvaluatorTests
{
    private static readonly EvalExample[] Dataset =
    [
        new("0", "Name a colour.", ["blue sky"]),
        new("1", "Capital of France?", ["Paris", "paris france"]),
        new("2", "Largest planet?", ["jupiter is the largest"]),
    ];

    // Seed 10 answers perfectly (padded with whitespace and followed by the EOS text and junk); seed 20 answers nonsense.
    private static IReadOnlyList<string> Generate(IReadOnlyList<EvalExample> batch, int seed, CancellationToken ct) =>
        [.. batch.Select(e => seed == 10 ? $"  {e.References[0]}\n<|endoftext|>junk jupiter" : "zzz")];

    [Fact]
    public void Evaluate_TwoSeeds_ReportsMeanAndStdOverSeeds()
    {
        var calls = new List<(int Seed, int Count)>();
        var evaluator = new SeededEvaluator(
            [new RougeLMetric(), new ExactMatchMetric()],
            new EvaluatorOptions { Seeds = [10, 20], BatchSize = 2 });

        var report = evaluator.Evaluate(Dataset, (batch, seed, ct) =>
        {
            calls.Add((seed, batch.Count));
            return Generate(batch, seed, ct);
        });

        // Seed 10 scores 1 on every example → 100; seed 20 scores 0 → 0. Mean 50, population std 50.
        Assert.Equal([(10, 2), (10, 1), (20, 2), (20, 1)], calls);
        Assert.Equal([100.0, 0.0], report.Metrics["rougeL"].PerSeed);
        Assert.Equal(50.0, report.Metrics["rougeL"].Mean, 12);
        Assert.Equal(50.0, report.Metrics["rougeL"].StandardDeviation, 12);
        Assert.Equal(50.0, report.Metrics["exact_match"].Mean, 12);
        Assert.Equal("blue sky", report.Runs[0].Predictions[0].Prediction);
        Assert.Equal(1.0, report.Runs[0].Predictions[1].Scores["exact_match"]);
        Assert.Equal(3, report.ExampleCount);
    }

    [Fact]
    public void Evaluate_WithProgress_ReportsEveryBatch()
    {
        var reports = new List<EvaluationProgress>();
        var evaluator = new SeededEvaluator([new RougeLMetric()], new EvaluatorOptions { Seeds = [10, 20], BatchSize = 2 });
        evaluator.Evaluate(Dataset, Generate, progress: new SyncProgress(reports.Add));
        Assert.Equal([(10, 2), (10, 3), (20, 2), (20, 3)], reports.Select(r => (r.Seed, r.ExamplesDone)));
        Assert.Equal(1.0, reports[^1].Fraction, 12);
        Assert.Equal(1.0 / 3.0, reports[0].Fraction, 12); // (0 + 2/3) / 2
    }

    [Fact]
    public void Evaluate_SampleStd_UsesNMinusOne()
    {
        var evaluator = new SeededEvaluator([new RougeLMetric()], new EvaluatorOptions { Seeds = [10, 20], SampleStandardDeviation = true });
        var report = evaluator.Evaluate(Dataset, Generate);
        Assert.Equal(Math.Sqrt(5000), report.Metrics["rougeL"].StandardDeviation, 10); // √((50² + 50²) / 1)
    }

    [Fact]
    public void Evaluate_WrongGenerationCount_ThrowsNamingSeedAndExamples()
    {
        var evaluator = new SeededEvaluator([new RougeLMetric()], new EvaluatorOptions { Seeds = [10], BatchSize = 3 });
        var ex = Assert.Throws<InvalidOperationException>(() => evaluator.Evaluate(Dataset, (batch, seed, ct) => ["only one"]));
        Assert.Contains("seed 10", ex.Message, StringComparison.Ordinal);
        Assert.Contains("0..2", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Evaluate_ExampleWithoutReferences_ThrowsNamingExample()
    {
        var evaluator = new SeededEvaluator([new RougeLMetric()], new EvaluatorOptions());
        var ex = Assert.Throws<ArgumentException>(() => evaluator.Evaluate([new EvalExample("q7", "p", [])], Generate));
        Assert.Contains("'q7'", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Constructor_InvalidOptions_ThrowsNamingOption()
    {
        var ex = Assert.Throws<ArgumentException>(() => new SeededEvaluator([new RougeLMetric()], new EvaluatorOptions { BatchSize = 0 }));
        Assert.Contains("BatchSize", ex.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => new SeededEvaluator([new RougeLMetric(), new RougeLMetric()], new EvaluatorOptions()));
    }

    [Fact]
    public void Evaluate_OptionsChangedAfterConstruction_UsesSnapshot()
    {
        var options = new EvaluatorOptions { Seeds = [10] };
        var evaluator = new SeededEvaluator([new RougeLMetric()], options);
        options.Seeds.Add(20);
        Assert.Equal([10], evaluator.Evaluate(Dataset, Generate).Seeds);
    }

    [Fact]
    public void Evaluate_Cancelled_Throws()
    {
        var evaluator = new SeededEvaluator([new RougeLMetric()], new EvaluatorOptions());
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        Assert.Throws<OperationCanceledException>(() => evaluator.Evaluate(Dataset, Generate, cts.Token));
    }

    [Theory]
    [InlineData("  answer <|endoftext|> more", "<|endoftext|>", true, "answer")]
    [InlineData("\u001c answer \u00a0", null, true, "answer")]
    [InlineData(" answer ", "", false, " answer ")]
    [InlineData("<|endoftext|>", "<|endoftext|>", true, "")]
    public void PostProcess_Cases_CutAtStopTextThenStrip(string raw, string? stop, bool strip, string expected) =>
        Assert.Equal(expected, SeededEvaluator.PostProcess(raw, stop, strip));

    [Fact]
    public void WriteJson_ThenReadJson_RoundTripsAtomically()
    {
        using var folder = TestRuntime.CreateTempFolder();
        var evaluator = new SeededEvaluator([new RougeLMetric(), new SquadF1Metric()], new EvaluatorOptions { Seeds = [10, 20, 30] });
        var report = evaluator.Evaluate(Dataset, Generate);
        var path = Path.Combine(folder.Path, "sub", "eval.json");

        report.WriteJson(path);
        report.WriteJson(path); // overwrite in place
        var read = EvaluationReport.ReadJson(path);

        Assert.Equal(["eval.json"], Directory.GetFiles(Path.GetDirectoryName(path)!).Select(Path.GetFileName));
        Assert.Equal(report.Seeds, read.Seeds);
        Assert.Equal(report.Metrics["squad_f1"].PerSeed, read.Metrics["squad_f1"].PerSeed);
        Assert.Equal(report.Runs[2].Predictions[1].Prediction, read.Runs[2].Predictions[1].Prediction);
        Assert.Contains("\"standard_deviation\"", File.ReadAllText(path), StringComparison.Ordinal);
    }

    [Fact]
    public void ReadJson_Corrupt_ThrowsNamingFile()
    {
        using var folder = TestRuntime.CreateTempFolder();
        var path = Path.Combine(folder.Path, "bad.json");
        File.WriteAllText(path, "{ not json");
        var ex = Assert.Throws<InvalidDataException>(() => EvaluationReport.ReadJson(path));
        Assert.Contains("bad.json", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AddDistillEval_ResolvesMetricsByNameAndEvaluator()
    {
        var services = new ServiceCollection();
        services.AddDistill().AddDistillEval(o =>
        {
            o.Seeds = [10, 20];
            o.Metrics = ["rougeL", "squad_f1", "gsm8k_accuracy"];
            o.Gsm8kRule = Gsm8kAnswerRule.SdftFindLastInteger;
        }).AddDistillEval();
        using var provider = services.BuildServiceProvider();

        var registry = provider.GetRequiredService<IMetricRegistry>();
        Assert.Equal(["rougeL", "squad_f1", "gsm8k_accuracy", "exact_match", "dskd_exact_match"], registry.Names);
        Assert.Equal(Gsm8kAnswerRule.SdftFindLastInteger, ((Gsm8kAccuracyMetric)registry.Get("gsm8k_accuracy")).Rule);
        var evaluator = provider.GetRequiredService<SeededEvaluator>();
        Assert.Equal(["rougeL", "squad_f1", "gsm8k_accuracy"], evaluator.Metrics.Select(m => m.Name));
        Assert.Throws<KeyNotFoundException>(() => registry.Get("bleu"));
    }

    [Fact]
    public void AddDistillEval_ConfigurationSection_ReplacesDefaultLists()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Eval:Seeds:0"] = "1",
            ["Eval:Seeds:1"] = "2",
            ["Eval:Metrics:0"] = "squad_f1",
            ["Eval:BatchSize"] = "4",
            ["Eval:StopText"] = "</s>",
        }).Build();
        var services = new ServiceCollection();
        services.AddDistill().AddDistillEval(configuration.GetSection("Eval"));
        using var provider = services.BuildServiceProvider();

        var options = provider.GetRequiredService<IOptions<EvaluatorOptions>>().Value;
        Assert.Equal([1, 2], options.Seeds);
        Assert.Equal(["squad_f1"], options.Metrics);
        Assert.Equal(4, options.BatchSize);
        Assert.Equal("</s>", options.StopText);
        Assert.Equal([10, 20, 30, 40, 50], new EvaluatorOptions().Seeds);
    }

    [Fact]
    public void AddDistillEval_CustomMetric_IsFoundByName()
    {
        var services = new ServiceCollection();
        services.AddSingleton<IMetric, LengthMetric>();
        services.AddDistill().AddDistillEval(o => o.Metrics = ["length_ratio", "rougeL"]);
        using var provider = services.BuildServiceProvider();

        var report = provider.GetRequiredService<SeededEvaluator>().Evaluate(Dataset, Generate);

        // Seed 10 reproduces each reference (ratio 1), the other seeds answer "zzz": 3 / len(reference) each, capped at 1.
        var perSeed = report.Metrics["length_ratio"].PerSeed;
        Assert.Equal(100.0, perSeed[0], 12);
        Assert.Equal(100.0 * ((3.0 / 8) + (3.0 / 5) + (3.0 / 22)) / 3, perSeed[1], 12);
    }

    private sealed class LengthMetric : IMetric
    {
        public string Name => "length_ratio";

        public double Score(string prediction, IReadOnlyList<string> references) => Math.Min(1.0, (double)prediction.Length / references[0].Length);
    }

    [Fact]
    public void AddDistillEval_InvalidOptions_FailsValidation()
    {
        var services = new ServiceCollection();
        services.AddDistill().AddDistillEval(o => o.Seeds = [10, 10]);
        using var provider = services.BuildServiceProvider();
        var ex = Assert.Throws<OptionsValidationException>(() => provider.GetRequiredService<IOptions<EvaluatorOptions>>().Value);
        Assert.Contains("distinct", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AddDistillEval_AnnotatedRules_NameTheOption()
    {
        var services = new ServiceCollection();
        services.AddDistill().AddDistillEval(o => (o.BatchSize, o.ScoreScale, o.Gsm8kRule) = (0, double.NaN, (Gsm8kAnswerRule)99));
        using var provider = services.BuildServiceProvider();
        var ex = Assert.Throws<OptionsValidationException>(() => provider.GetRequiredService<IOptions<EvaluatorOptions>>().Value);
        Assert.Equal(3, ex.Failures.Count());
        foreach (var option in new[] { "EvaluatorOptions.BatchSize", "EvaluatorOptions.ScoreScale", "EvaluatorOptions.Gsm8kRule" })
        {
            Assert.Contains(ex.Failures, f => f.Contains(option, StringComparison.Ordinal));
        }

        var direct = Assert.Throws<ArgumentException>(() => new SeededEvaluator([], new EvaluatorOptions { ScoreScale = double.PositiveInfinity, Metrics = [] }));
        Assert.Contains("EvaluatorOptions.ScoreScale", direct.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("Metrics", direct.Message, StringComparison.Ordinal);
    }

    // Progress<T> posts to the thread pool; the test needs the reports synchronously.
    private sealed class SyncProgress(Action<EvaluationProgress> report) : IProgress<EvaluationProgress>
    {
        public void Report(EvaluationProgress value) => report(value);
    }
}
