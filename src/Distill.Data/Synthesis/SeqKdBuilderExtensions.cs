using Distill.Data.Synthesis;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace Distill;

/// <summary>Registers SeqKD's options on an <see cref="IDistillBuilder"/>.</summary>
public static class SeqKdBuilderExtensions
{
    /// <summary>
    /// Adds <see cref="SeqKdOptions"/> (validated at start-up: ranges, template name, k &gt; 1 only when sampling). Hosts read
    /// them through <c>IOptions&lt;SeqKdOptions&gt;</c> and pass them to <see cref="SeqKdGenerator"/>. Calling it twice is harmless.
    /// </summary>
    /// <param name="builder">The Distill builder.</param>
    /// <param name="configure">Optional configuration of the options.</param>
    /// <returns>The builder.</returns>
    public static IDistillBuilder AddDistillSeqKd(this IDistillBuilder builder, Action<SeqKdOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var options = builder.Services.AddOptions<SeqKdOptions>();
        if (configure is not null)
        {
            options.Configure(configure);
        }

        return AddCore(builder);
    }

    /// <summary>Adds <see cref="SeqKdOptions"/> bound from a configuration section (e.g. <c>"Distill:SeqKd"</c>).</summary>
    /// <param name="builder">The Distill builder.</param>
    /// <param name="section">The section with <c>Template</c>, <c>MaxNewTokens</c>, <c>DoSample</c>, <c>NumSamples</c>, <c>Seed</c>, ...</param>
    /// <returns>The builder.</returns>
    public static IDistillBuilder AddDistillSeqKd(this IDistillBuilder builder, IConfiguration section)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(section);
        builder.Services.AddOptions<SeqKdOptions>().Bind(section);
        return AddCore(builder);
    }

    private static IDistillBuilder AddCore(IDistillBuilder builder)
    {
        builder.Services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<SeqKdOptions>, SeqKdOptionsValidator>());
        builder.Services.AddOptions<SeqKdOptions>().ValidateOnStart();
        return builder;
    }
}
