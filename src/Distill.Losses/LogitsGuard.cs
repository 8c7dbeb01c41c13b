using Microsoft.Extensions.Logging;
using static TorchSharp.torch;

namespace Distill.Losses;

/// <summary>Input checks shared by the same-vocabulary objectives: clear messages instead of shape exceptions.</summary>
internal static class LogitsGuard
{
    /// <summary>The student logits of the context, [B, T, V], checked against the labels.</summary>
    internal static Tensor StudentLogits(ObjectiveContext context, string objective)
    {
        var logits = context.Student.Logits
            ?? throw new InvalidOperationException($"Objective '{objective}' needs student logits, but CausalLMOutput.Logits is null (was the student run with ComputeLogits = false?).");
        CheckLabels(logits, context.Batch.Labels, "student logits", objective);
        return logits;
    }

    /// <summary>
    /// Returns student and teacher logits of equal vocabulary width, after checking shapes, teacher gradients and
    /// (optionally) finiteness; slices both to the shared width when allowed (<see cref="ObjectiveChecks.SharedVocabulary(string, long, long, bool, string, string, ILogger, ref bool)"/>).
    /// </summary>
    internal static (Tensor Student, Tensor Teacher) Pair(ObjectiveContext context, LossesOptions options, string objective, ILogger logger, ref bool sliceLogged)
    {
        var student = StudentLogits(context, objective);
        var teacher = context.Teacher?.Logits
            ?? throw new InvalidOperationException($"Objective '{objective}' needs teacher logits, but TeacherOutput.Logits is null (no teacher, or the teacher was asked only for hidden states / top-k).");
        return Pair(student, teacher, context.Batch.Labels, options, objective, logger, ref sliceLogged);
    }

    /// <inheritdoc cref="Pair(ObjectiveContext, LossesOptions, string, ILogger, ref bool)"/>
    internal static (Tensor Student, Tensor Teacher) Pair(Tensor student, Tensor teacher, Tensor labels, LossesOptions options, string objective, ILogger logger, ref bool sliceLogged)
    {
        if (teacher.requires_grad)
        {
            throw new InvalidOperationException($"Objective '{objective}': teacher logits require grad. Compute them under torch.no_grad() or pass teacher.detach(); the teacher must stay frozen.");
        }

        CheckLabels(teacher, labels, "teacher logits", objective);
        long vs = student.shape[^1], vt = teacher.shape[^1];
        var shared = ObjectiveChecks.SharedVocabulary(objective, vs, vt, options.SliceToSharedVocabulary,
            $"student logits [{string.Join(", ", student.shape)}]", $"teacher logits [{string.Join(", ", teacher.shape)}]", logger, ref sliceLogged);
        if (shared != vs)
        {
            student = student.narrow(-1, 0, shared);
        }

        if (shared != vt)
        {
            teacher = teacher.narrow(-1, 0, shared);
        }

        if (options.CheckFinite)
        {
            CheckFinite(student, "student logits", objective);
            CheckFinite(teacher, "teacher logits", objective);
        }

        return (student, teacher);
    }

    /// <summary>
    /// Throws if <paramref name="logits"/> holds NaN or +inf, naming the first bad (batch, token, vocab) position. −inf is allowed
    /// (masked vocabulary entries). One host read: only with <see cref="LossesOptions.CheckFinite"/> (off by default).
    /// </summary>
    internal static void CheckFinite(Tensor logits, string what, string objective)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var bad = logits.isnan().logical_or(logits.isposinf());
        if (!bad.any().item<bool>())
        {
            return;
        }

        var first = bad.nonzero()[0].data<long>().ToArray();
        var value = logits[first].to(ScalarType.Float32).item<float>();
        var where = first.Length == 3 ? $"(batch {first[0]}, token {first[1]}, vocab {first[2]})" : $"({string.Join(", ", first)})";
        throw new ArgumentException($"Objective '{objective}': {what} contain {(float.IsNaN(value) ? "NaN" : "+inf")} at {where}; {bad.sum().item<long>()} bad entries in total. Check the model for overflow (bf16/fp16) or a broken checkpoint.");
    }

    private static void CheckLabels(Tensor logits, Tensor labels, string what, string objective)
    {
        if (logits.dim() != 3)
        {
            throw new ArgumentException($"Objective '{objective}': {what} must be [B, T, V], got [{string.Join(", ", logits.shape)}].");
        }

        if (labels.dim() != 2 || labels.shape[0] != logits.shape[0] || labels.shape[1] != logits.shape[1])
        {
            throw new ArgumentException($"Objective '{objective}': labels [{string.Join(", ", labels.shape)}] must be [B, T] matching {what} [{string.Join(", ", logits.shape)}] (labels are aligned with logits, already shifted).");
        }
    }
}
