using System.Globalization;
using Distill.Eval.Metrics;
using Distill.Eval.Text;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Distill.Eval.Evaluation;

/// <summary>
/// Generates answers for a dataset once per seed, post-processes them as DSKD does, scores them with the configured
/// metrics and reports mean ± std over the seeds (DSKD: seeds 10..50, averaged).
/// </summary>
/// <remarks>
/// Generation is a delegate so that any generator plugs in (Distill's <c>TextGenerator</c>, a remote server, a cache):
/// <c>generate(batch, seed, cancellationToken)</c> returns one raw generation per example of <c>batch</c>, in order. The
/// evaluator calls it batch by batch in dataset order with the run's seed for every batch; a generator that seeds its
/// sampler from that seed on each call is reproducible run to run. Post-processing: cut at the first
/// <see cref="EvaluatorOptions.StopText"/>, then strip. Not thread-safe; the delegate is called sequentially.
/// </remarks>
public sealed class SeededEvaluator
{
    private readonly EvaluatorOptions _options; // a snapshot: later changes to the caller's options have no effect
    private readonly ILogger _logger;

    /// <summary>Creates an evaluator over explicit metrics.</summary>
    /// <param name="metrics">The metrics to compute, in report order; names must be distinct.</param>
    /// <param name="options">Seeds, batch size, post-processing and scaling (its <see cref="EvaluatorOptions.Metrics"/> is ignored).</param>
    /// <param name="logger">Optional logger.</param>
    public SeededEvaluator(IEnumerable<IMetric> metrics, EvaluatorOptions options, ILogger<SeededEvaluator>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(metrics);
        ArgumentNullException.ThrowIfNull(options);
        var validation = new EvaluatorOptionsValidator().Validate(null, options);
        var list = metrics.ToList();
        var failures = validation.Failed ? validation.Failures.Where(f => !f.Contains(".Metrics", StringComparison.Ordinal)).ToList() : [];
        if (failures.Count > 0)
        {
            throw new ArgumentException(string.Join(" ", failures), nameof(options));
        }

        if (list.Count == 0)
        {
            throw new ArgumentException("At least one metric is required.", nameof(metrics));
        }

        var duplicate = list.GroupBy(m => m.Name, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null)
        {
            throw new ArgumentException($"Metric name '{duplicate.Key}' appears more than once.", nameof(metrics));
        }

        Metrics = list;
        _options = new EvaluatorOptions
        {
            Seeds = [.. options.Seeds],
            Metrics = [.. list.Select(m => m.Name)],
            BatchSize = options.BatchSize,
            StopText = options.StopText,
            Strip = options.Strip,
            ScoreScale = options.ScoreScale,
            SampleStandardDeviation = options.SampleStandardDeviation,
            Gsm8kRule = options.Gsm8kRule,
        };
        _logger = (ILogger?)logger ?? NullLogger.Instance;
    }

    /// <summary>Creates an evaluator whose metrics are looked up by <see cref="EvaluatorOptions.Metrics"/> in <paramref name="registry"/>.</summary>
    /// <param name="registry">The metric registry.</param>
    /// <param name="options">The options.</param>
    /// <param name="logger">Optional logger.</param>
    public SeededEvaluator(IMetricRegistry registry, EvaluatorOptions options, ILogger<SeededEvaluator>? logger = null)
        : this(ResolveMetrics(registry, options), options, logger)
    {
    }

    /// <summary>Gets the metrics computed, in report order.</summary>
    public IReadOnlyList<IMetric> Metrics { get; }

    /// <summary>Runs the evaluation.</summary>
    /// <param name="dataset">The examples; at least one, each with at least one reference.</param>
    /// <param name="generate">Returns one raw generation per example of the batch, for the given seed.</param>
    /// <param name="cancellationToken">Checked between batches and passed to <paramref name="generate"/>.</param>
    /// <param name="progress">Optional progress, reported after every batch.</param>
    /// <returns>Per-metric mean ± std over seeds, per-seed values and every prediction.</returns>
    /// <exception cref="ArgumentException">An example has no reference, or ids repeat (the message names the example).</exception>
    /// <exception cref="InvalidOperationException">The delegate returned the wrong number of generations or a null one.</exception>
    public EvaluationReport Evaluate(
        IReadOnlyList<EvalExample> dataset,
        Func<IReadOnlyList<EvalExample>, int, CancellationToken, IReadOnlyList<string>> generate,
        CancellationToken cancellationToken = default,
        IProgress<EvaluationProgress>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(dataset);
        ArgumentNullException.ThrowIfNull(generate);
        ValidateDataset(dataset);

        var seeds = _options.Seeds.ToList();
        if (_logger.IsEnabled(LogLevel.Information))
        {
            Log.EvaluationStarted(_logger, dataset.Count, string.Join(", ", seeds), string.Join(", ", Metrics.Select(m => m.Name)));
        }

        var runs = new List<SeedRun>(seeds.Count);
        for (var s = 0; s < seeds.Count; s++)
        {
            runs.Add(RunSeed(dataset, generate, seeds[s], cancellationToken, done =>
                progress?.Report(new EvaluationProgress(seeds[s], s, seeds.Count, done, dataset.Count))));
        }

        var summaries = new Dictionary<string, MetricSummary>(StringComparer.Ordinal);
        foreach (var metric in Metrics)
        {
            var perSeed = runs.Select(r => r.Metrics[metric.Name]).ToList();
            summaries[metric.Name] = new MetricSummary(perSeed.Average(), StandardDeviation(perSeed, _options.SampleStandardDeviation), perSeed);
        }

        if (_logger.IsEnabled(LogLevel.Information))
        {
            Log.EvaluationFinished(_logger, seeds.Count, string.Join(", ", summaries.Select(kv =>
                string.Create(CultureInfo.InvariantCulture, $"{kv.Key} {kv.Value.Mean:F4} ± {kv.Value.StandardDeviation:F4}"))));
        }

        return new EvaluationReport(seeds, dataset.Count, summaries, runs);
    }

    /// <summary>DSKD's post-processing: cut at the first <paramref name="stopText"/> (if any), then Python <c>str.strip()</c>.</summary>
    /// <param name="generation">The decoded generation.</param>
    /// <param name="stopText">The stop text, or <see langword="null"/>/empty for none.</param>
    /// <param name="strip">Whether to strip whitespace.</param>
    /// <returns>The text that is scored.</returns>
    public static string PostProcess(string generation, string? stopText, bool strip)
    {
        ArgumentNullException.ThrowIfNull(generation);
        var text = generation;
        if (!string.IsNullOrEmpty(stopText))
        {
            var cut = text.IndexOf(stopText, StringComparison.Ordinal);
            if (cut >= 0)
            {
                text = text[..cut];
            }
        }

        if (strip)
        {
            var start = 0;
            var end = text.Length;
            while (start < end && PythonText.IsSpace(text[start]))
            {
                start++;
            }

            while (end > start && PythonText.IsSpace(text[end - 1]))
            {
                end--;
            }

            text = text[start..end];
        }

        return text;
    }

    /// <summary>Population (n) or sample (n − 1) standard deviation; 0 for fewer than two values.</summary>
    internal static double StandardDeviation(IReadOnlyList<double> values, bool sample)
    {
        if (values.Count < 2)
        {
            return 0;
        }

        var mean = values.Average();
        var squares = values.Sum(v => (v - mean) * (v - mean));
        return Math.Sqrt(squares / (sample ? values.Count - 1 : values.Count));
    }

    private SeedRun RunSeed(
        IReadOnlyList<EvalExample> dataset,
        Func<IReadOnlyList<EvalExample>, int, CancellationToken, IReadOnlyList<string>> generate,
        int seed,
        CancellationToken cancellationToken,
        Action<int> batchDone)
    {
        var predictions = new List<ExamplePrediction>(dataset.Count);
        var sums = new double[Metrics.Count];
        for (var start = 0; start < dataset.Count; start += _options.BatchSize)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var count = Math.Min(_options.BatchSize, dataset.Count - start);
            var batch = new EvalExample[count];
            for (var i = 0; i < count; i++)
            {
                batch[i] = dataset[start + i];
            }

            var generations = generate(batch, seed, cancellationToken)
                ?? throw new InvalidOperationException($"The generation delegate returned null for seed {seed}, examples {start}..{start + count - 1}.");
            if (generations.Count != count)
            {
                throw new InvalidOperationException(
                    $"The generation delegate returned {generations.Count} generations for {count} examples (seed {seed}, examples {start}..{start + count - 1}).");
            }

            Log.BatchGenerated(_logger, seed, start, start + count - 1);
            for (var i = 0; i < count; i++)
            {
                var raw = generations[i]
                    ?? throw new InvalidOperationException($"The generation delegate returned null for example '{batch[i].Id}' (seed {seed}).");
                var prediction = PostProcess(raw, _options.StopText, _options.Strip);
                var scores = new Dictionary<string, double>(Metrics.Count, StringComparer.Ordinal);
                for (var m = 0; m < Metrics.Count; m++)
                {
                    var score = Metrics[m].Score(prediction, batch[i].References);
                    scores[Metrics[m].Name] = score;
                    sums[m] += score;
                }

                predictions.Add(new ExamplePrediction(batch[i].Id, prediction, scores));
            }

            batchDone(start + count);
        }

        var metrics = new Dictionary<string, double>(Metrics.Count, StringComparer.Ordinal);
        for (var m = 0; m < Metrics.Count; m++)
        {
            metrics[Metrics[m].Name] = sums[m] / dataset.Count * _options.ScoreScale;
        }

        if (_logger.IsEnabled(LogLevel.Information))
        {
            Log.SeedFinished(_logger, seed, string.Join(", ", metrics.Select(kv => string.Create(CultureInfo.InvariantCulture, $"{kv.Key} {kv.Value:F4}"))));
        }

        return new SeedRun(seed, metrics, predictions);
    }

    private static void ValidateDataset(IReadOnlyList<EvalExample> dataset)
    {
        if (dataset.Count == 0)
        {
            throw new ArgumentException("The evaluation dataset is empty.", nameof(dataset));
        }

        var ids = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < dataset.Count; i++)
        {
            var example = dataset[i] ?? throw new ArgumentException($"Example at index {i} is null.", nameof(dataset));
            if (example.References is null || example.References.Count == 0 || example.References.Any(r => r is null))
            {
                throw new ArgumentException($"Example '{example.Id}' (index {i}) has no references or a null reference.", nameof(dataset));
            }

            if (example.Prompt is null)
            {
                throw new ArgumentException($"Example '{example.Id}' (index {i}) has a null prompt.", nameof(dataset));
            }

            if (!ids.Add(example.Id ?? string.Empty))
            {
                throw new ArgumentException($"Example id '{example.Id}' (index {i}) is not unique.", nameof(dataset));
            }
        }
    }

    private static List<IMetric> ResolveMetrics(IMetricRegistry registry, EvaluatorOptions options)
    {
        ArgumentNullException.ThrowIfNull(registry);
        ArgumentNullException.ThrowIfNull(options);
        if (options.Metrics is null || options.Metrics.Count == 0)
        {
            throw new ArgumentException("EvaluatorOptions.Metrics must name at least one metric.", nameof(options));
        }

        return [.. options.Metrics.Select(registry.Get)];
    }
}

/// <summary>Progress of <see cref="SeededEvaluator.Evaluate"/>, reported after every generated batch.</summary>
/// <param name="Seed">The seed being run.</param>
/// <param name="SeedIndex">Its 0-based position in the seed list.</param>
/// <param name="SeedCount">The number of seeds.</param>
/// <param name="ExamplesDone">Examples generated and scored so far under this seed.</param>
/// <param name="ExampleCount">Examples per seed.</param>
public readonly record struct EvaluationProgress(int Seed, int SeedIndex, int SeedCount, int ExamplesDone, int ExampleCount)
{
    /// <summary>Gets the overall fraction done, in [0, 1].</summary>
    public double Fraction => (SeedIndex + ((double)ExamplesDone / ExampleCount)) / SeedCount;
}
