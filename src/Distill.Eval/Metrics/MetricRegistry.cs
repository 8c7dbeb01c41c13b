namespace Distill.Eval.Metrics;

/// <summary>Looks registered <see cref="IMetric"/>s up by name (what <c>AddDistillEval</c> and configuration files use).</summary>
/// <remarks>Thread-safe; the set of metrics is fixed when the registry is built.</remarks>
public interface IMetricRegistry
{
    /// <summary>Gets the registered names, in registration order.</summary>
    IReadOnlyList<string> Names { get; }

    /// <summary>Gets the metric registered under <paramref name="name"/> (ordinal, case-sensitive: <c>rougeL</c>).</summary>
    /// <param name="name">The metric name.</param>
    /// <returns>The metric.</returns>
    /// <exception cref="KeyNotFoundException">No metric has that name (the message lists the known ones).</exception>
    IMetric Get(string name);
}

/// <summary>The default <see cref="IMetricRegistry"/>: every <see cref="IMetric"/> given, later registrations replacing earlier ones of the same name.</summary>
public sealed class MetricRegistry : IMetricRegistry
{
    private readonly Dictionary<string, IMetric> _byName;
    private readonly List<string> _names;

    /// <summary>Creates a registry over <paramref name="metrics"/>.</summary>
    /// <param name="metrics">The metrics (from DI: every registered <see cref="IMetric"/>).</param>
    /// <exception cref="ArgumentException">A metric has an empty name.</exception>
    public MetricRegistry(IEnumerable<IMetric> metrics) => _byName = Build(metrics, out _names);

    /// <summary>Gets a registry of the built-in metrics: <c>rougeL</c>, <c>exact_match</c>, <c>dskd_exact_match</c>, <c>squad_f1</c>, <c>gsm8k_accuracy</c>.</summary>
    public static MetricRegistry BuiltIn { get; } = new(CreateBuiltIn(Gsm8kAnswerRule.FinalNumber));

    /// <inheritdoc />
    public IReadOnlyList<string> Names => _names;

    /// <inheritdoc />
    public IMetric Get(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        return _byName.TryGetValue(name, out var metric)
            ? metric
            : throw new KeyNotFoundException($"No metric named '{name}' is registered; known metrics: {string.Join(", ", _names)}.");
    }

    /// <summary>Creates the built-in metrics.</summary>
    /// <param name="gsm8kRule">The answer rule of <c>gsm8k_accuracy</c>.</param>
    /// <returns>One instance of each built-in metric.</returns>
    public static IReadOnlyList<IMetric> CreateBuiltIn(Gsm8kAnswerRule gsm8kRule) =>
    [
        new RougeLMetric(),
        new ExactMatchMetric(),
        new DskdExactMatchMetric(),
        new SquadF1Metric(),
        new Gsm8kAccuracyMetric(gsm8kRule),
    ];

    private static Dictionary<string, IMetric> Build(IEnumerable<IMetric> metrics, out List<string> names)
    {
        ArgumentNullException.ThrowIfNull(metrics);
        var byName = new Dictionary<string, IMetric>(StringComparer.Ordinal);
        names = [];
        foreach (var metric in metrics)
        {
            if (string.IsNullOrWhiteSpace(metric.Name))
            {
                throw new ArgumentException($"Metric {metric.GetType().FullName} has an empty name.", nameof(metrics));
            }

            if (!byName.ContainsKey(metric.Name))
            {
                names.Add(metric.Name);
            }

            byName[metric.Name] = metric;
        }

        return byName;
    }
}
