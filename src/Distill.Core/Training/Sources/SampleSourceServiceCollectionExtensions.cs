using Distill.Training.Sources;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Distill;

/// <summary>Registers the sample sources (ATKD sources, GKD on-policy).</summary>
public static class SampleSourceServiceCollectionExtensions
{
    /// <summary>
    /// Adds <see cref="SampleSourceOptions"/> (validated at start) and <see cref="ISampleSourceFactory"/>. Calling it twice is harmless.
    /// </summary>
    /// <param name="builder">The builder returned by <c>services.AddDistill(...)</c>.</param>
    /// <param name="configure">Optional configuration of the options.</param>
    /// <returns>The same builder.</returns>
    public static IDistillBuilder AddDistillSampleSources(this IDistillBuilder builder, Action<SampleSourceOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var options = builder.Services.AddOptions<SampleSourceOptions>();
        if (configure is not null)
        {
            options.Configure(configure);
        }

        return AddCore(builder, options);
    }

    /// <summary>Adds the sample sources with <see cref="SampleSourceOptions"/> bound from a configuration section (e.g. <c>"Distill:SampleSource"</c>).</summary>
    /// <param name="builder">The builder returned by <c>services.AddDistill(...)</c>.</param>
    /// <param name="section">The section; keys are the property names (<c>StudentRequestRatio</c>, <c>MaxNewTokens</c>, ...).</param>
    /// <returns>The same builder.</returns>
    public static IDistillBuilder AddDistillSampleSources(this IDistillBuilder builder, IConfiguration section)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(section);
        return AddCore(builder, builder.Services.AddOptions<SampleSourceOptions>().Bind(section));
    }

    private static IDistillBuilder AddCore(IDistillBuilder builder, OptionsBuilder<SampleSourceOptions> options)
    {
        options.ValidateOnStart();
        builder.Services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<SampleSourceOptions>, SampleSourceOptionsValidator>());
        builder.Services.TryAddSingleton<ISampleSourceFactory, SampleSourceFactory>();
        return builder;
    }
}

/// <summary>Creates sample sources with the registered <see cref="SampleSourceOptions"/> and the host's logging.</summary>
public interface ISampleSourceFactory
{
    /// <summary>Creates the source of an ATKD sample source (see <see cref="SampleSources.Create"/>) from a copy of the registered options.</summary>
    /// <param name="source">The ATKD source.</param>
    /// <param name="student">The student being trained.</param>
    /// <param name="teacher">The trainer's teacher (required for <c>mix_token</c>; checked for vocabulary otherwise).</param>
    /// <param name="configure">Per-run changes applied to the copy.</param>
    /// <returns>The source.</returns>
    ISampleSource Create(AtkdSampleSource source, ICausalLM student, ITeacher? teacher = null, Action<SampleSourceOptions>? configure = null);
}

internal sealed class SampleSourceFactory(IOptions<SampleSourceOptions> options, ILoggerFactory? loggerFactory = null) : ISampleSourceFactory
{
    public ISampleSource Create(AtkdSampleSource source, ICausalLM student, ITeacher? teacher = null, Action<SampleSourceOptions>? configure = null)
    {
        var o = options.Value.Clone();
        configure?.Invoke(o);
        var logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger("Distill.Training.Sources.SampleSources");
        return SampleSources.Create(source, student, teacher, o, logger);
    }
}
