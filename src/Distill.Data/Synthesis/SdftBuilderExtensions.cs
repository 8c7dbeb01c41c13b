using Distill.Data.Synthesis;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace Distill;

/// <summary>Registers SDFT's options on an <see cref="IDistillBuilder"/>.</summary>
public static class SdftBuilderExtensions
{
    /// <summary>
    /// Adds <see cref="SdftOptions"/> (validated at start-up: ranges, task type and template names). Hosts read them through
    /// <c>IOptions&lt;SdftOptions&gt;</c> and pass them to <see cref="SdftSynthesizer"/>. Calling it twice is harmless.
    /// </summary>
    /// <param name="builder">The Distill builder.</param>
    /// <param name="configure">Optional configuration of the options.</param>
    /// <returns>The builder.</returns>
    public static IDistillBuilder AddDistillSdft(this IDistillBuilder builder, Action<SdftOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var options = builder.Services.AddOptions<SdftOptions>();
        if (configure is not null)
        {
            options.Configure(configure);
        }

        return AddCore(builder);
    }

    /// <summary>Adds <see cref="SdftOptions"/> bound from a configuration section (e.g. <c>"Distill:Sdft"</c>).</summary>
    /// <param name="builder">The Distill builder.</param>
    /// <param name="section">The section with <c>Task</c>, <c>Branch</c>, <c>MaxNewTokens</c>, <c>Temperature</c>, ...</param>
    /// <returns>The builder.</returns>
    public static IDistillBuilder AddDistillSdft(this IDistillBuilder builder, IConfiguration section)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(section);
        builder.Services.AddOptions<SdftOptions>().Bind(section);
        return AddCore(builder);
    }

    private static IDistillBuilder AddCore(IDistillBuilder builder)
    {
        builder.Services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<SdftOptions>, SdftOptionsValidator>());
        builder.Services.AddOptions<SdftOptions>().ValidateOnStart();
        return builder;
    }
}
