using Distill.Eval.Evaluation;
using Distill.Eval.Metrics;
using Microsoft.Extensions.Configuration;
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
        var options = builder.Services.AddOptions<EvaluatorOptions>();
        if (configure is not null)
        {
            options.Configure(configure);
        }

        return AddEval(builder);
    }

    /// <summary>
    /// Adds Distill.Eval as <see cref="AddDistillEval(IDistillBuilder, Action{EvaluatorOptions}?)"/> does, with
    /// <see cref="EvaluatorOptions"/> bound from a configuration section (e.g. <c>"Distill:Eval"</c>). Lists given in the
    /// section (<c>Seeds</c>, <c>Metrics</c>) replace the defaults instead of being appended to them.
    /// </summary>
    /// <param name="builder">The builder returned by <c>services.AddDistill(...)</c>.</param>
    /// <param name="section">The section holding <c>Seeds</c>, <c>Metrics</c>, <c>BatchSize</c>, <c>StopText</c>, ...</param>
    /// <returns>The same builder, for chaining.</returns>
    public static IDistillBuilder AddDistillEval(this IDistillBuilder builder, IConfiguration section)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(section);
        builder.Services.AddOptions<EvaluatorOptions>().Configure(o =>
        {
            section.Bind(o);

            // The binder appends to pre-filled collections; take exactly what the section lists.
            if (section.GetSection(nameof(EvaluatorOptions.Seeds)).Exists())
            {
                o.Seeds = section.GetSection(nameof(EvaluatorOptions.Seeds)).Get<int[]>() ?? [];
            }

            if (section.GetSection(nameof(EvaluatorOptions.Metrics)).Exists())
            {
                o.Metrics = section.GetSection(nameof(EvaluatorOptions.Metrics)).Get<string[]>() ?? [];
            }
        });
        return AddEval(builder);
    }

    private static IDistillBuilder AddEval(IDistillBuilder builder)
    {
        var services = builder.Services;
        services.AddOptions<EvaluatorOptions>().ValidateOnStart();
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
