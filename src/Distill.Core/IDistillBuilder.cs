using Microsoft.Extensions.DependencyInjection;

namespace Distill;

/// <summary>Returned by <c>services.AddDistill(...)</c>; the other Distill packages chain their <c>AddDistill…()</c> extensions on it.</summary>
public interface IDistillBuilder
{
    /// <summary>Gets the service collection Distill registers into.</summary>
    IServiceCollection Services { get; }
}

internal sealed class DistillBuilder(IServiceCollection services) : IDistillBuilder
{
    public IServiceCollection Services { get; } = services;
}
