namespace Distill.Losses.DualSpace;

/// <summary>The student-space distance functions DSKD selects with <c>--kd-objective</c>, by name.</summary>
internal static class DskdDistances
{
    /// <summary>Gets the known names.</summary>
    internal static IReadOnlyList<string> Names { get; } = ["forward_kl"];

    /// <summary>Whether <paramref name="name"/> is a known distance.</summary>
    internal static bool IsKnown(string? name) => name is not null && Names.Contains(name, StringComparer.Ordinal);

    /// <summary>Resolves a distance by name.</summary>
    /// <param name="name">One of <see cref="Names"/>.</param>
    /// <param name="skewLambda">λ of the skewed KLs.</param>
    /// <param name="adaptiveKlAlpha">The AKL head/tail threshold.</param>
    /// <returns>The distance with sum reduction.</returns>
    internal static DskdDistance Resolve(string name, double skewLambda, double adaptiveKlAlpha)
    {
        _ = skewLambda;
        _ = adaptiveKlAlpha;
        return name switch
        {
            "forward_kl" => DskdMath.ForwardKlSum,
            _ => throw new ArgumentException($"Unknown DSKD distance '{name}'; known: {string.Join(", ", Names)}.", nameof(name)),
        };
    }
}
