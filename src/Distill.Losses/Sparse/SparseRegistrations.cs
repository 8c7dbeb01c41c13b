using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace Distill.Losses;

/// <summary>The named registrations of the sparse top-k objectives (served by the package's <see cref="IObjectiveFactory"/>).</summary>
internal static class SparseRegistrations
{
    /// <summary>Adds <see cref="SparseTopKOptions"/> (validated at start) once.</summary>
    internal static void AddOptions(IServiceCollection services)
    {
        services.AddOptions<SparseTopKOptions>().ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<SparseTopKOptions>, SparseTopKOptionsValidator>());
    }

    /// <summary><c>sparse_forward_kl</c>, <c>sparse_reverse_kl</c>, <c>sparse_jsd</c>, <c>sparse_tvd</c>.</summary>
    internal static IEnumerable<ObjectiveRegistration> All() =>
        SparseKdObjective.Names.Select(name => new ObjectiveRegistration(
            name, sp => new SparseKdObjective(name, sp.GetRequiredService<IOptions<SparseTopKOptions>>().Value)));
}
