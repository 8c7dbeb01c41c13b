using Distill.Data;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace Distill;

/// <summary>Registers Distill.Data on an <see cref="IDistillBuilder"/>.</summary>
public static class DistillDataBuilderExtensions
{
    /// <summary>
    /// Adds <see cref="DataOptions"/> (validated at start-up). Hosts read them through <c>IOptions&lt;DataOptions&gt;</c> and
    /// build batches with <see cref="TokenizedDataset.Create(IEnumerable{TextExample}, HfTokenizer, HfTokenizer, DataOptions, Microsoft.Extensions.Logging.ILogger)"/> and <see cref="DistillationBatchSource.FromOptions"/>.
    /// Calling it twice is harmless; each call's <paramref name="configure"/> is applied.
    /// </summary>
    /// <param name="builder">The Distill builder.</param>
    /// <param name="configure">Optional configuration of the options.</param>
    /// <returns>The builder.</returns>
    public static IDistillBuilder AddDistillData(this IDistillBuilder builder, Action<DataOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var options = builder.Services.AddOptions<DataOptions>();
        if (configure is not null)
        {
            options.Configure(configure);
        }

        return AddCore(builder);
    }

    /// <summary>Adds <see cref="DataOptions"/> bound from a configuration section (e.g. <c>"Distill:Data"</c>).</summary>
    /// <param name="builder">The Distill builder.</param>
    /// <param name="section">The section with <c>MaxLength</c>, <c>MaxPromptLength</c>, <c>PaddingSide</c>, <c>BatchSize</c>, <c>Seed</c>, ...</param>
    /// <returns>The builder.</returns>
    public static IDistillBuilder AddDistillData(this IDistillBuilder builder, IConfiguration section)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(section);
        builder.Services.AddOptions<DataOptions>().Bind(section);
        return AddCore(builder);
    }

    private static IDistillBuilder AddCore(IDistillBuilder builder)
    {
        builder.Services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<DataOptions>, DataOptionsValidator>());
        builder.Services.AddOptions<DataOptions>().ValidateOnStart();
        return builder;
    }
}
