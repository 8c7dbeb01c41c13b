using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace Distill;

/// <summary>Registers Distill in a <see cref="IServiceCollection"/>.</summary>
public static class DistillServiceCollectionExtensions
{
    /// <summary>
    /// Adds Distill's core services: <see cref="DistillOptions"/> (validated), <see cref="IDistillRuntime"/> (native runtime + compute selection).
    /// Calling it twice is harmless; each call's <paramref name="configure"/> is applied.
    /// </summary>
    /// <param name="services">The service collection.</param>
    /// <param name="configure">Optional configuration of <see cref="DistillOptions"/>.</param>
    /// <returns>A builder for chaining the other packages' <c>AddDistill…()</c> calls.</returns>
    public static IDistillBuilder AddDistill(this IServiceCollection services, Action<DistillOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        var builder = services.AddOptions<DistillOptions>();
        if (configure is not null)
        {
            builder.Configure(configure);
        }

        return AddCore(services);
    }

    /// <summary>Adds Distill's core services with <see cref="DistillOptions"/> bound from a configuration section (e.g. <c>"Distill"</c>).</summary>
    /// <param name="services">The service collection.</param>
    /// <param name="section">The configuration section holding <c>Device</c>, <c>DType</c>, <c>Threads</c>, <c>Seed</c>.</param>
    /// <returns>A builder for chaining.</returns>
    public static IDistillBuilder AddDistill(this IServiceCollection services, IConfiguration section)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(section);
        services.AddOptions<DistillOptions>().Bind(section);
        return AddCore(services);
    }

    private static DistillBuilder AddCore(IServiceCollection services)
    {
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<DistillOptions>, DistillOptionsValidator>());
        services.AddOptions<DistillOptions>().ValidateOnStart();
        services.TryAddSingleton<IDistillRuntime, DistillRuntimeService>();
        return new DistillBuilder(services);
    }
}
