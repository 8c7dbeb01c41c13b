using Distill.Losses.DualSpace;
using static TorchSharp.torch;

namespace Distill.Losses.CrossTokenizer;

/// <summary>
/// The teacher side of the ULD objectives: dense logits [B, L_t, V_t], or sparse top-k log-probabilities [B, L_t, K] with the
/// log tail mass [B, L_t] (a teacher-token cache or server). ULD reads only the teacher's sorted probabilities, so both serve.
/// </summary>
internal sealed record UldTeacher(Tensor? Logits, Tensor? TopKLogProbs, Tensor? LogTailMass)
{
    /// <summary>Gets the teacher's sequence length.</summary>
    internal long Length => (Logits ?? TopKLogProbs!).shape[1];

    /// <summary>Gets a value indicating whether the teacher is sparse.</summary>
    internal bool IsSparse => Logits is null;

    /// <summary>The teacher output of a context: its logits when present, else its sparse top-k.</summary>
    internal static UldTeacher From(ObjectiveContext context, string objective)
    {
        var output = context.Teacher;
        if (output?.Logits is null && output?.TopKLogProbs is { } topK)
        {
            if (topK.dim() != 3)
            {
                throw new ArgumentException($"Objective '{objective}': teacher top-k log-probs must be [B, T, K]; got [{string.Join(", ", topK.shape)}].");
            }

            return new UldTeacher(null, topK, output.TopKLogTailMass);
        }

        return new UldTeacher(ContextChecks.TeacherLogits(context, objective), null, null);
    }

    /// <summary>Per row of <paramref name="studentRows"/> [B, K, V_s]: the sorted-probability distance to teacher rows <c>start[b] + k</c>.</summary>
    /// <param name="studentRows">Student logits of the aligned rows (divided by the student temperature).</param>
    /// <param name="start">[B] the first teacher row.</param>
    /// <param name="rows">K.</param>
    /// <param name="temperature">The teacher temperature (dense only; a sparse teacher needs 1).</param>
    /// <param name="objective">For messages.</param>
    /// <returns>[B, K] float32.</returns>
    internal Tensor Distance(Tensor studentRows, Tensor start, long rows, double temperature, string objective)
    {
        if (Logits is not null)
        {
            return UldMath.SortedProbabilityDistance(studentRows, UldMath.GatherRows(Logits, start, rows).Div(temperature));
        }

        if (temperature != 1.0)
        {
            throw new InvalidOperationException($"Objective '{objective}': a sparse top-k teacher gives probabilities at temperature 1 only (the mass outside the top-k cannot be re-tempered); set the teacher temperature to 1 or use a local teacher.");
        }

        var tail = LogTailMass is null ? null : UldMath.GatherRows(LogTailMass, start, rows);
        return UldMath.SortedTopKDistance(studentRows, UldMath.GatherRows(TopKLogProbs!, start, rows), tail);
    }
}
