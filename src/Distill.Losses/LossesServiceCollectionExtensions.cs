using Distill.Losses;
using Distill.Losses.CrossTokenizer;
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
    /// Adds every built-in objective of <see cref="DistillObjectives.BuiltIn"/> (DSKD family, ATKD family, GKD JSD, SFT/SeqKD,
    /// the <c>*_chunked</c> fused variants, and the dual-space and cross-tokenizer objectives), an <see cref="IObjectiveFactory"/>
    /// and validated <see cref="LossesOptions"/>.
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

    /// <summary>
    /// Registers one declared objective (its name, its <c>_chunked</c> variant when token-level, and its aliases) with the
    /// <see cref="IObjectiveFactory"/>, reading its options from the <see cref="LossesOptions"/> bound in DI. A later
    /// registration of a name replaces an earlier one. The built-in objectives are registered the same way by <c>AddDistillLosses()</c>.
    /// </summary>
    /// <param name="builder">The builder returned by <c>services.AddDistill(...)</c>.</param>
    /// <param name="declaration">The declaration (see <see cref="ObjectiveDeclaration"/>).</param>
    /// <returns>The same builder.</returns>
    public static IDistillBuilder AddDistillObjective(this IDistillBuilder builder, ObjectiveDeclaration declaration)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(declaration);
        AddCore(builder);
        foreach (var registration in Registrations([declaration]))
        {
            builder.Services.AddSingleton(registration);
        }

        return builder;
    }

    /// <summary>The DI registrations of <paramref name="declarations"/>.</summary>
    internal static IEnumerable<ObjectiveRegistration> Registrations(IEnumerable<ObjectiveDeclaration> declarations) =>
        DistillObjectives.Registrations(declarations).Select(r => new ObjectiveRegistration(r.Name, sp => r.Build(Options(sp), Logger(sp))));

    private static IDistillBuilder AddCore(IDistillBuilder builder)
    {
        var services = builder.Services;
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<LossesOptions>, LossesOptionsValidator>());
        services.AddOptions<LossesOptions>().ValidateOnStart();
        services.TryAddSingleton<IObjectiveFactory, ObjectiveFactory>();

        // The cross-tokenizer section is part of LossesOptions; IOptions<CrossTokenizerOptions> reads that section.
        services.TryAddSingleton<IOptions<CrossTokenizerOptions>>(sp => Microsoft.Extensions.Options.Options.Create(sp.GetRequiredService<IOptions<LossesOptions>>().Value.CrossTokenizer));
        if (!services.Any(d => d.ServiceType == typeof(LossesMarker)))
        {
            services.AddSingleton<LossesMarker>();
            foreach (var registration in Registrations(DistillObjectives.BuiltIn))
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
