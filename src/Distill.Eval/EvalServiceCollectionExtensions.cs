using Distill.Eval.Evaluation;
using Distill.Eval.Metrics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Distill;

/// <summary>Registers Distill.Eval on an <see cref="IDistillBuilder"/>.</summary>
public static class EvalServiceCollectionExtensions
{
    /// <summary>
    /// Adds the built-in metrics as <see cref="IMetric"/> singletons (<c>rougeL</c>, <c>exact_match</c>,
    /// <c>dskd_exact_match</c>, <c>squad_f1</c>, <c>gsm8k_accuracy</c>), an <see cref="IMetricRegistry"/> that finds every
    /// registered <see cref="IMetric"/> by name (register your own with <c>services.AddSingleton&lt;IMetric, MyMetric&gt;()</c>),
    /// validated <see cref="EvaluatorOptions"/> and a <see cref="SeededEvaluator"/> over the metrics the options name.
    /// Calling it twice is harmless; each call's <paramref name="configure"/> is applied.
    /// </summary>
    /// <param name="builder">The builder returned by <c>services.AddDistill(...)</c>.</param>
    /// <param name="configure">Optional configuration of <see cref="EvaluatorOptions"/>.</param>
    /// <returns>The same builder, for chaining.</returns>
    public static IDistillBuilder AddDistillEval(this IDistillBuilder builder, Action<EvaluatorOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var services = builder.Services;
        var options = services.AddOptions<EvaluatorOptions>();
        if (configure is not null)
        {
            options.Configure(configure);
        }

        options.ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<EvaluatorOptions>, EvaluatorOptionsValidator>());

        services.TryAddEnumerable(ServiceDescriptor.Singleton<IMetric, RougeLMetric>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IMetric, SquadF1Metric>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IMetric, Gsm8kAccuracyMetric>(sp =>
            new Gsm8kAccuracyMetric(sp.GetRequiredService<IOptions<EvaluatorOptions>>().Value.Gsm8kRule)));
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IMetric, ExactMatchMetric>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IMetric, DskdExactMatchMetric>());
        services.TryAddSingleton<IMetricRegistry>(sp => new MetricRegistry(sp.GetServices<IMetric>()));
        services.TryAddSingleton(sp => new SeededEvaluator(
            sp.GetRequiredService<IMetricRegistry>(),
            sp.GetRequiredService<IOptions<EvaluatorOptions>>().Value,
            sp.GetService<ILogger<SeededEvaluator>>()));
        return builder;
    }
}
