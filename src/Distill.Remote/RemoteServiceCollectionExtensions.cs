using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Distill.Remote;

/// <summary>Registers the remote (vLLM) teacher.</summary>
public static class RemoteServiceCollectionExtensions
{
    /// <summary>
    /// Adds <see cref="RemoteTeacher"/> (as itself, <see cref="ITeacher"/> and <see cref="Data.ITopKProducer"/>), its
    /// validated options and a named <see cref="HttpClient"/> with the resilience pipeline (total timeout, retries with
    /// exponential backoff, attempt timeout).
    /// </summary>
    /// <param name="builder">The builder returned by <c>services.AddDistill(...)</c>.</param>
    /// <param name="configure">Sets the options.</param>
    /// <returns>The builder.</returns>
    public static IDistillBuilder AddDistillRemoteTeacher(this IDistillBuilder builder, Action<RemoteTeacherOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(configure);
        builder.Services.AddOptions<RemoteTeacherOptions>().Configure(configure);
        return AddCore(builder);
    }

    /// <summary>As <see cref="AddDistillRemoteTeacher(IDistillBuilder, Action{RemoteTeacherOptions})"/>, bound from a configuration section (e.g. <c>"RemoteTeacher"</c>).</summary>
    /// <param name="builder">The builder.</param>
    /// <param name="section">The section.</param>
    /// <returns>The builder.</returns>
    public static IDistillBuilder AddDistillRemoteTeacher(this IDistillBuilder builder, IConfiguration section)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(section);
        builder.Services.AddOptions<RemoteTeacherOptions>().Bind(section);
        return AddCore(builder);
    }

    private static IDistillBuilder AddCore(IDistillBuilder builder)
    {
        var services = builder.Services;
        services.AddOptions<RemoteTeacherOptions>().ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<RemoteTeacherOptions>, RemoteTeacherOptionsValidator>());
        services.AddHttpClient(RemoteTeacher.HttpClientName, http => http.Timeout = Timeout.InfiniteTimeSpan)
            .AddResilienceHandler("distill-remote-teacher", (pipeline, context) =>
                RemoteTeacher.ConfigureResilience(
                    pipeline,
                    context.ServiceProvider.GetRequiredService<IOptions<RemoteTeacherOptions>>().Value,
                    context.ServiceProvider.GetRequiredService<ILoggerFactory>().CreateLogger("Distill.Remote")));
        services.TryAddSingleton(sp => new RemoteTeacher(
            sp.GetRequiredService<IHttpClientFactory>().CreateClient(RemoteTeacher.HttpClientName),
            sp.GetRequiredService<IOptions<RemoteTeacherOptions>>().Value,
            sp.GetService<ILoggerFactory>()?.CreateLogger("Distill.Remote"),
            ownsHttp: false));
        services.TryAddSingleton<ITeacher>(sp => sp.GetRequiredService<RemoteTeacher>());
        services.TryAddSingleton<Data.ITopKProducer>(sp => sp.GetRequiredService<RemoteTeacher>());
        return builder;
    }
}
