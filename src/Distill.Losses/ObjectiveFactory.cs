using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Distill.Losses;

/// <summary>Creates objectives by name from the <see cref="ObjectiveRegistration"/>s in DI; a later registration of a name replaces an earlier one.</summary>
internal sealed class ObjectiveFactory : IObjectiveFactory
{
    private readonly IServiceProvider services;
    private readonly ILogger logger;
    private readonly Dictionary<string, ObjectiveRegistration> registrations = new(StringComparer.Ordinal);

    public ObjectiveFactory(IServiceProvider services, IEnumerable<ObjectiveRegistration> registrations)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(registrations);
        this.services = services;
        logger = (ILogger?)services.GetService<ILoggerFactory>()?.CreateLogger<ObjectiveFactory>() ?? NullLogger.Instance;
        foreach (var r in registrations)
        {
            this.registrations[r.Name] = r;
        }
    }

    public IReadOnlyCollection<string> Names => registrations.Keys;

    public IDistillationObjective Create(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (!registrations.TryGetValue(name, out var registration))
        {
            throw new ArgumentException(
                $"Unknown distillation objective '{name}'. Known objectives: {string.Join(", ", registrations.Keys.Order(StringComparer.Ordinal))}.", nameof(name));
        }

        var objective = registration.Create(services);
        Log.ObjectiveCreated(logger, name);
        return objective;
    }
}
