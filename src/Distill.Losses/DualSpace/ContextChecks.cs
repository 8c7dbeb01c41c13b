using static TorchSharp.torch;

namespace Distill.Losses.DualSpace;

/// <summary>Reads what an objective needs from an <see cref="ObjectiveContext"/>, with errors that name the objective and the missing piece.</summary>
internal static class ContextChecks
{
    internal static Tensor StudentLogits(ObjectiveContext c, string objective) =>
        c.Student.Logits ?? throw new InvalidOperationException($"Objective '{objective}' needs the student's logits, but the student output has none (ComputeLogits = false?).");

    internal static Tensor StudentHidden(ObjectiveContext c, string objective) =>
        c.Student.HiddenStates ?? throw new InvalidOperationException($"Objective '{objective}' needs the student's last hidden states, but the student output has none (ReturnHiddenStates = false?).");

    internal static TeacherOutput Teacher(ObjectiveContext c, string objective) =>
        c.Teacher ?? throw new InvalidOperationException($"Objective '{objective}' needs a teacher, but the context has no teacher output.");

    internal static Tensor TeacherLogits(ObjectiveContext c, string objective) =>
        Teacher(c, objective).Logits ?? throw new InvalidOperationException($"Objective '{objective}' needs full teacher logits [B, T, V], but the teacher output has none.");

    internal static Tensor TeacherHidden(ObjectiveContext c, string objective) =>
        Teacher(c, objective).HiddenStates ?? throw new InvalidOperationException($"Objective '{objective}' needs the teacher's last hidden states, but the teacher output has none.");

    internal static ICausalLM StudentModel(ObjectiveContext c, string objective) =>
        c.StudentModel ?? throw new InvalidOperationException($"Objective '{objective}' needs the student model (its lm_head / embeddings), but ObjectiveContext.StudentModel is null.");

    internal static ICausalLM TeacherModel(ObjectiveContext c, string objective) =>
        c.TeacherModel ?? throw new InvalidOperationException($"Objective '{objective}' needs the local teacher model (its lm_head), but the context has none (use a LocalModelTeacher).");

    /// <summary>The teacher's labels of a cross-tokenizer batch; throws when the batch carries no teacher tokenisation.</summary>
    internal static (Tensor Ids, Tensor Labels) TeacherTokens(ObjectiveContext c, string objective)
    {
        var b = c.Batch;
        if (b.TeacherInputIds is null || b.TeacherLabels is null)
        {
            throw new InvalidOperationException($"Objective '{objective}' is a cross-tokenizer objective: the batch must carry the teacher's own tokenisation (TeacherInputIds and TeacherLabels), but {(b.TeacherInputIds is null ? "TeacherInputIds" : "TeacherLabels")} is null.");
        }

        return (b.TeacherInputIds, b.TeacherLabels);
    }

    /// <summary>Throws when two tensors differ in dimension <paramref name="dim"/>.</summary>
    internal static void SameSize(Tensor a, string aName, Tensor b, string bName, int dim, string objective)
    {
        if (a.dim() <= dim || b.dim() <= dim || a.shape[dim] != b.shape[dim])
        {
            throw new InvalidOperationException($"Objective '{objective}': {aName} has shape [{string.Join(", ", a.shape)}] and {bName} [{string.Join(", ", b.shape)}]; dimension {dim} must match.");
        }
    }
}
