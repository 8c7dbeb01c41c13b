using Microsoft.Extensions.Logging;

namespace Distill.Losses;

/// <summary>
/// The compatibility rules of the objectives, each written once: what the teacher must provide, and whether two
/// vocabularies may differ. <see cref="IDistillationObjective.Validate"/> of every objective and the per-batch guards
/// call these.
/// </summary>
internal static class ObjectiveChecks
{
    /// <summary>Checks a setup against an objective's requirements (teacher present, capabilities, vocabulary).</summary>
    /// <param name="objective">The objective's name, for messages.</param>
    /// <param name="requirements">What the objective needs.</param>
    /// <param name="setup">The student and teacher.</param>
    /// <param name="sliceToSharedVocabulary">Whether different vocabulary sizes are cut to the shared width (<see cref="LossesOptions.SliceToSharedVocabulary"/>).</param>
    /// <param name="chunked">Whether the objective is a fused chunked one (teacher logits or hidden states + lm_head both work).</param>
    /// <exception cref="InvalidOperationException">The setup cannot work; the message names the mismatch and the fix.</exception>
    internal static void Validate(string objective, ObjectiveRequirements requirements, ObjectiveSetup setup, bool sliceToSharedVocabulary, bool chunked)
    {
        ArgumentNullException.ThrowIfNull(setup);
        if (!requirements.NeedsTeacher)
        {
            return;
        }

        var teacher = setup.Teacher
            ?? throw new InvalidOperationException($"Objective '{objective}' needs a teacher, but the setup has none. Pass a teacher, or use a teacher-free objective (sft, seqkd).");
        Capabilities(objective, requirements, teacher.Capabilities, chunked);
        if (requirements.RequiresSameVocabulary && teacher.VocabularySize >= 0)
        {
            SharedVocabulary(objective, setup.StudentVocabularySize, teacher.VocabularySize, sliceToSharedVocabulary, "student", "teacher");
        }
    }

    /// <summary>Throws when the teacher cannot supply what the objective reads.</summary>
    internal static void Capabilities(string objective, ObjectiveRequirements requirements, TeacherCapabilities capabilities, bool chunked)
    {
        var dense = capabilities.HasFlag(TeacherCapabilities.DenseLogits);
        var hidden = capabilities.HasFlag(TeacherCapabilities.HiddenStates);
        var sparse = capabilities.HasFlag(TeacherCapabilities.SparseTopK);
        var logitsOk = chunked ? dense || hidden : dense || (sparse && requirements.AcceptsSparseTopK);
        if (requirements.NeedsTeacherLogits && !logitsOk || chunked && !(dense || hidden))
        {
            var what = sparse && !requirements.AcceptsSparseTopK
                ? "it only provides sparse top-k log-probabilities, which this objective does not accept (it compares full distributions)"
                : $"it provides {capabilities}";
            throw new InvalidOperationException($"Objective '{objective}' needs full teacher logits{(chunked ? " or teacher hidden states with its lm_head" : string.Empty)}, but {what}. Use a local teacher model, or an objective that accepts sparse top-k targets.");
        }

        if (requirements.NeedsTeacherHiddenStates && !hidden && !chunked)
        {
            throw new InvalidOperationException($"Objective '{objective}' needs the teacher's last hidden states and lm_head (TeacherCapabilities.HiddenStates), but the teacher provides {capabilities}. Use a local teacher model.");
        }
    }

    /// <summary>
    /// The vocabulary rule of same-vocabulary objectives: equal sizes, or (with <see cref="LossesOptions.SliceToSharedVocabulary"/>)
    /// the smaller one. Returns the width both sides are cut to, or <see langword="null"/> with <paramref name="error"/> set when
    /// the sizes differ and slicing is off.
    /// </summary>
    internal static long? SharedVocabulary(string objective, long student, long teacher, bool slice, string studentWhat, string teacherWhat, out string? error)
    {
        error = null;
        if (student == teacher)
        {
            return student;
        }

        if (!slice)
        {
            error = $"Objective '{objective}': vocabulary mismatch, the {studentWhat} has V = {student} but the {teacherWhat} has V = {teacher}. " +
                $"Same-vocabulary objectives compare distributions entry by entry; if both models share a tokenizer and only the padded embedding rows differ (e.g. 151936 vs 152064), set {nameof(LossesOptions)}.{nameof(LossesOptions.SliceToSharedVocabulary)} = true to use the first {Math.Min(student, teacher)} entries; otherwise use a cross-tokenizer objective (dskd_cma, uld, uld_dskd, min_ed).";
            return null;
        }

        return Math.Min(student, teacher);
    }

    /// <summary>The vocabulary rule at setup: throws <see cref="InvalidOperationException"/> on a mismatch.</summary>
    internal static long SharedVocabulary(string objective, long student, long teacher, bool slice, string studentWhat, string teacherWhat) =>
        SharedVocabulary(objective, student, teacher, slice, studentWhat, teacherWhat, out var error) ?? throw new InvalidOperationException(error);

    /// <summary>The vocabulary rule on tensors of a batch: throws <see cref="ArgumentException"/> on a mismatch and logs a slice once.</summary>
    internal static long SharedVocabulary(string objective, long student, long teacher, bool slice, string studentWhat, string teacherWhat, ILogger logger, ref bool logged)
    {
        var shared = SharedVocabulary(objective, student, teacher, slice, studentWhat, teacherWhat, out var error) ?? throw new ArgumentException(error);
        if ((shared != student || shared != teacher) && !logged)
        {
            Log.VocabularySliced(logger, objective, student, teacher, shared);
            logged = true;
        }

        return shared;
    }
}
