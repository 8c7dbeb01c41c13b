using Distill.Losses;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Distill;

/// <summary>Registers the same-vocabulary objectives of Distill.Losses.</summary>
public static class LossesServiceCollectionExtensions
{
    /// <summary>
    /// Adds the same-vocabulary objectives (DSKD family, ATKD family, GKD JSD, SFT/SeqKD and the <c>*_chunked</c> fused
    /// variants) under their <see cref="ObjectiveNames"/>, an <see cref="IObjectiveFactory"/> and validated <see cref="LossesOptions"/>.
    /// Calling it twice is harmless; each call's <paramref name="configure"/> is applied.
    /// </summary>
    /// <param name="builder">The builder returned by <c>services.AddDistill(...)</c>.</param>
    /// <param name="configure">Optional configuration of <see cref="LossesOptions"/>.</param>
    /// <returns>The same builder.</returns>
    public static IDistillBuilder AddDistillLosses(this IDistillBuilder builder, Action<LossesOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var options = builder.Services.AddOptions<LossesOptions>();
        if (configure is not null)
        {
            options.Configure(configure);
        }

        return AddCore(builder);
    }

    /// <summary>Adds the objectives with <see cref="LossesOptions"/> bound from a configuration section (e.g. <c>"Losses"</c>, with sub-sections <c>Divergence</c>, <c>Atkd</c>, <c>Gkd</c>).</summary>
    /// <param name="builder">The builder returned by <c>services.AddDistill(...)</c>.</param>
    /// <param name="section">The configuration section.</param>
    /// <returns>The same builder.</returns>
    public static IDistillBuilder AddDistillLosses(this IDistillBuilder builder, IConfiguration section)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(section);
        builder.Services.AddOptions<LossesOptions>().Bind(section);
        return AddCore(builder);
    }

    /// <summary>All names this package registers (the plain objectives and their chunked variants).</summary>
    internal static IEnumerable<ObjectiveRegistration> Registrations()
    {
        foreach (var name in new[] { ObjectiveNames.ForwardKl, ObjectiveNames.ReverseKl, ObjectiveNames.JsDivergence, ObjectiveNames.SkewedForwardKl, ObjectiveNames.SkewedReverseKl, ObjectiveNames.AdaptiveKl })
        {
            yield return new(name, sp => new DivergenceKdObjective(name, Options(sp), Logger(sp)));
        }

        foreach (var name in new[] { ObjectiveNames.AtkdForward, ObjectiveNames.AtkdReverse, ObjectiveNames.AtkdJsd, ObjectiveNames.AtkdTvd, ObjectiveNames.AtkdDkd })
        {
            yield return new(name, sp => new AtkdTokenObjective(name, Options(sp), Logger(sp)));
        }

        yield return new(ObjectiveNames.Atkd, sp => new AtkdObjective(Options(sp), Logger(sp)));
        yield return new(ObjectiveNames.GkdJsd, sp => new GkdJsdObjective(Options(sp), Logger(sp)));
        yield return new(ObjectiveNames.Sft, _ => new SftObjective(ObjectiveNames.Sft));
        yield return new(ObjectiveNames.SeqKd, _ => new SftObjective(ObjectiveNames.SeqKd));
        foreach (var name in ChunkedObjective.SupportedBaseNames)
        {
            var chunked = name + ObjectiveNames.ChunkedSuffix;
            yield return new(chunked, sp => new ChunkedObjective(name, Options(sp), Logger(sp)));
        }

        // Dual-space and cross-tokenizer objectives (dskd, dskd_cma, uld, uld_dskd, min_ed; CrossTokenizer/).
        foreach (var registration in Losses.CrossTokenizer.CrossTokenizerRegistrations.All())
        {
            yield return registration;
        }

        // Sparse top-k objectives (sparse_forward_kl, sparse_reverse_kl, sparse_jsd, sparse_tvd; Sparse/).
        foreach (var registration in SparseRegistrations.All())
        {
            yield return registration;
        }
    }

    private static IDistillBuilder AddCore(IDistillBuilder builder)
    {
        var services = builder.Services;
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<LossesOptions>, LossesOptionsValidator>());
        services.AddOptions<LossesOptions>().ValidateOnStart();
        services.TryAddSingleton<IObjectiveFactory, ObjectiveFactory>();
        Losses.CrossTokenizer.CrossTokenizerRegistrations.AddOptions(services);
        SparseRegistrations.AddOptions(services);
        if (!services.Any(d => d.ServiceType == typeof(LossesMarker)))
        {
            services.AddSingleton<LossesMarker>();
            foreach (var registration in Registrations())
            {
                services.AddSingleton(registration);
            }
        }

        return builder;
    }

    private static LossesOptions Options(IServiceProvider sp) => sp.GetRequiredService<IOptions<LossesOptions>>().Value;

    private static ILogger Logger(IServiceProvider sp) =>
        (ILogger?)sp.GetService<ILoggerFactory>()?.CreateLogger("Distill.Losses") ?? NullLogger.Instance;

    /// <summary>Marks that the objectives were registered, so a second call does not duplicate them.</summary>
    private sealed class LossesMarker;
}
