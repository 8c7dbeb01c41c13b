using Distill.Losses;
using Distill.Losses.CrossTokenizer;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace Distill;

/// <summary>Configures the dual-space and cross-tokenizer objectives of Distill.Losses.</summary>
public static class CrossTokenizerServiceCollectionExtensions
{
    /// <summary>
    /// Adds Distill.Losses (if not yet added: <c>AddDistillLosses()</c> registers <c>dskd</c>, <c>dskd_cma</c>, <c>uld</c>,
    /// <c>uld_dskd</c>, <c>min_ed</c> and DSKD's criterion names as aliases) and configures <see cref="CrossTokenizerOptions"/>,
    /// the <see cref="LossesOptions.CrossTokenizer"/> section.
    /// </summary>
    /// <param name="builder">The builder returned by <c>services.AddDistill(...)</c>.</param>
    /// <param name="configure">Optional configuration of <see cref="CrossTokenizerOptions"/>.</param>
    /// <returns>The same builder.</returns>
    /// <remarks>
    /// <c>dskd</c> and <c>dskd_cma</c> come from the factory without projectors: call
    /// <see cref="IModelAwareObjective.Initialize"/> with the two models before training (their sizes decide the projectors).
    /// </remarks>
    public static IDistillBuilder AddDistillCrossTokenizer(this IDistillBuilder builder, Action<CrossTokenizerOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.AddDistillLosses();
        if (configure is not null)
        {
            builder.Services.Configure<LossesOptions>(o => configure(o.CrossTokenizer));
        }

        return builder;
    }

    /// <summary>As <see cref="AddDistillCrossTokenizer(IDistillBuilder, Action{CrossTokenizerOptions})"/>, binding the options from a configuration section.</summary>
    /// <param name="builder">The builder.</param>
    /// <param name="section">The section (e.g. <c>"CrossTokenizer"</c>).</param>
    /// <returns>The same builder.</returns>
    public static IDistillBuilder AddDistillCrossTokenizer(this IDistillBuilder builder, IConfiguration section)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(section);
        builder.AddDistillLosses();
        builder.Services.AddOptions<LossesOptions>().Configure(o => section.Bind(o.CrossTokenizer));
        return builder;
    }
}
