using System.Text.Json;
using System.Text.Json.Serialization;
using Distill.IO;

namespace Distill.Eval.Evaluation;

/// <summary>Mean ± standard deviation of one metric over the seeds.</summary>
/// <param name="Mean">Mean of the per-seed values.</param>
/// <param name="StandardDeviation">Standard deviation of the per-seed values (population or sample, as configured; 0 for one seed).</param>
/// <param name="PerSeed">Per-seed values in seed order: mean per-example score × <see cref="EvaluatorOptions.ScoreScale"/>.</param>
public sealed record MetricSummary(double Mean, double StandardDeviation, IReadOnlyList<double> PerSeed);

/// <summary>One example's generation and scores under one seed.</summary>
/// <param name="Id">The example id.</param>
/// <param name="Prediction">The post-processed generation that was scored.</param>
/// <param name="Scores">Per-metric scores in [0, 1] (unscaled).</param>
public sealed record ExamplePrediction(string Id, string Prediction, IReadOnlyDictionary<string, double> Scores);

/// <summary>Everything one seed produced.</summary>
/// <param name="Seed">The seed.</param>
/// <param name="Metrics">Per-metric value for this seed (scaled).</param>
/// <param name="Predictions">Per-example predictions and scores, in dataset order.</param>
public sealed record SeedRun(int Seed, IReadOnlyDictionary<string, double> Metrics, IReadOnlyList<ExamplePrediction> Predictions);

/// <summary>The result of <see cref="SeededEvaluator.Evaluate"/>: per-metric mean ± std over seeds and every prediction.</summary>
/// <param name="Seeds">The seeds, in run order.</param>
/// <param name="ExampleCount">The number of examples evaluated per seed.</param>
/// <param name="Metrics">Per-metric summary, keyed by metric name, in the configured order.</param>
/// <param name="Runs">Per-seed details.</param>
public sealed record EvaluationReport(IReadOnlyList<int> Seeds, int ExampleCount, IReadOnlyDictionary<string, MetricSummary> Metrics, IReadOnlyList<SeedRun> Runs)
{
    private static readonly JsonSerializerOptions JsonOptions = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    /// <summary>Serialises the report to JSON (snake_case keys).</summary>
    /// <returns>Indented JSON.</returns>
    public string ToJson() => JsonSerializer.Serialize(this, JsonOptions);

    /// <summary>Writes the report as JSON atomically: to a temporary file in the same folder, then renamed over <paramref name="path"/>.</summary>
    /// <param name="path">The destination file; its folder is created if needed.</param>
    public void WriteJson(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        AtomicFile.WriteAllText(path, ToJson());
    }

    /// <summary>Reads a report written by <see cref="WriteJson"/>.</summary>
    /// <param name="path">The JSON file.</param>
    /// <returns>The report.</returns>
    /// <exception cref="InvalidDataException">The file is not a valid report (the message names the file).</exception>
    public static EvaluationReport ReadJson(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        try
        {
            return JsonSerializer.Deserialize<EvaluationReport>(File.ReadAllText(path), JsonOptions)
                ?? throw new InvalidDataException($"Evaluation report '{path}' is empty (JSON null).");
        }
        catch (JsonException ex)
        {
            throw new InvalidDataException($"Evaluation report '{path}' is not valid: {ex.Message}", ex);
        }
    }
}
