namespace Distill.Losses.DualSpace;

/// <summary>The student-space distance functions DSKD selects with <c>--kd-objective</c>, by name, over the divergences of this package.</summary>
internal static class DskdDistances
{
    /// <summary>Gets the known names (DSKD's <c>--kd-objective</c> values).</summary>
    internal static IReadOnlyList<string> Names { get; } =
        [ObjectiveNames.ForwardKl, ObjectiveNames.ReverseKl, ObjectiveNames.JsDivergence, ObjectiveNames.SkewedForwardKl, ObjectiveNames.SkewedReverseKl, ObjectiveNames.AdaptiveKl];

    /// <summary>Whether <paramref name="name"/> is a known distance.</summary>
    internal static bool IsKnown(string? name) => name is not null && Names.Contains(name, StringComparer.Ordinal);

    /// <summary>Resolves a distance by name.</summary>
    /// <param name="name">One of <see cref="Names"/>.</param>
    /// <param name="skewLambda">λ of the skewed KLs.</param>
    /// <param name="adaptiveKlAlpha">The AKL head/tail threshold.</param>
    /// <returns>The distance with sum reduction over the mask.</returns>
    internal static DskdDistance Resolve(string name, double skewLambda, double adaptiveKlAlpha) => name switch
    {
        ObjectiveNames.ForwardKl => DskdMath.ForwardKlSum,
        ObjectiveNames.ReverseKl => (s, t, m, temp) => DskdMath.Masked(ReverseKl.PerToken(s, t, temp), m),
        ObjectiveNames.JsDivergence => (s, t, m, temp) => DskdMath.Masked(JsDivergence.PerToken(s, t, temp), m),
        ObjectiveNames.SkewedForwardKl => (s, t, m, temp) => DskdMath.Masked(SkewKl.Forward(s, t, skewLambda, temp), m),
        ObjectiveNames.SkewedReverseKl => (s, t, m, temp) => DskdMath.Masked(SkewKl.Reverse(s, t, skewLambda, temp), m),
        ObjectiveNames.AdaptiveKl => (s, t, m, temp) => DskdMath.Masked(AdaptiveKl.PerToken(s, t, adaptiveKlAlpha, temp), m),
        _ => throw new ArgumentException($"Unknown DSKD distance '{name}'; known: {string.Join(", ", Names)}.", nameof(name)),
    };
}
