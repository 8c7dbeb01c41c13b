namespace Distill.Losses.DualSpace;

/// <summary>
/// The student-space distance functions DSKD selects with <c>--kd-objective</c>, by name: the KD term of each built-in
/// DSKD-family declaration (options section <c>Divergence</c>), so a divergence declared there is a DSKD distance too.
/// </summary>
internal static class DskdDistances
{
    /// <summary>Gets the known names (DSKD's <c>--kd-objective</c> values): the built-in <c>Divergence</c>-section declarations.</summary>
    internal static IReadOnlyList<string> Names =>
        [.. DistillObjectives.BuiltIn.Where(d => d.OptionsSection == nameof(LossesOptions.Divergence)).Select(d => d.Name)];

    /// <summary>Whether <paramref name="name"/> is a known distance.</summary>
    internal static bool IsKnown(string? name) => name is not null && Names.Contains(name, StringComparer.Ordinal);

    /// <summary>Resolves a distance by name.</summary>
    /// <param name="name">One of <see cref="Names"/>.</param>
    /// <param name="skewLambda">λ of the skewed KLs.</param>
    /// <param name="adaptiveKlAlpha">The AKL head/tail threshold.</param>
    /// <returns>The distance with sum reduction over the mask.</returns>
    internal static DskdDistance Resolve(string name, double skewLambda, double adaptiveKlAlpha)
    {
        var declaration = DistillObjectives.BuiltIn.FirstOrDefault(d => d.OptionsSection == nameof(LossesOptions.Divergence) && d.Name == name)
            ?? throw new ArgumentException($"Unknown DSKD distance '{name}'; known: {string.Join(", ", Names)}.", nameof(name));
        return (s, t, mask, temperature) =>
        {
            var options = new LossesOptions { Divergence = { Temperature = temperature, SkewLambda = skewLambda, AdaptiveKlAlpha = adaptiveKlAlpha } };
            var kd = declaration.Terms!(options).Single(term => term.Metric == "kd");
            // The KD term of a Divergence declaration reads no labels (CE is the other term); the mask stands in for them.
            return DskdMath.Masked(kd.PerToken(s, t, mask), mask);
        };
    }
}
