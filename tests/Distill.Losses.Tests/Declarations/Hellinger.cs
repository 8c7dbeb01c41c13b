using static TorchSharp.torch;

namespace Distill.Losses.Tests.Declarations;

/// <summary>
/// A divergence the library does not ship, added the way docs/objectives.md describes: this one file (the per-token
/// math) plus one declaration. Squared Hellinger distance H²(p, q) = 1 − Σ_v √(p_v·q_v), p = softmax(teacher/T), q = softmax(student/T).
/// </summary>
internal static class Hellinger
{
    /// <summary>The one declaration: DSKD-style mixing (1 − α)·CE + α·H², options section <c>Divergence</c>.</summary>
    internal static readonly ObjectiveDeclaration Declaration =
        ObjectiveDeclaration.Divergence("hellinger", o => (s, t, _) => PerToken(s, t!, o.Divergence.Temperature));

    /// <summary>Per-token H², [...] float32 from [..., V] logits.</summary>
    internal static Tensor PerToken(Tensor studentLogits, Tensor teacherLogits, double temperature)
    {
        using var scope = NewDisposeScope();
        var logQ = (studentLogits.to(ScalarType.Float32) / temperature).log_softmax(-1);
        var logP = (teacherLogits.to(ScalarType.Float32) / temperature).log_softmax(-1);
        return (1 - ((logQ + logP) * 0.5).exp().sum(-1)).MoveToOuterDisposeScope();
    }
}
