using TorchSharp;
using static TorchSharp.torch;

namespace Distill.Eval.Diagnostics;

/// <summary>
/// Teacher–student agreement over the scored positions of one or more batches. Sums are kept so batches combine
/// exactly (<see cref="Add"/>); the means divide by <see cref="TokenCount"/>.
/// </summary>
/// <param name="TopK">The k of the top-k overlap.</param>
/// <param name="TokenCount">Number of scored positions.</param>
/// <param name="Top1Matches">Positions where argmax(student) = argmax(teacher).</param>
/// <param name="TopKOverlapSum">Σ over positions of |topk(student) ∩ topk(teacher)| / k.</param>
/// <param name="KlSum">Σ over positions of KL(p_teacher ‖ p_student) in nats.</param>
public readonly record struct DiagnosticsResult(int TopK, long TokenCount, long Top1Matches, double TopKOverlapSum, double KlSum)
{
    /// <summary>Gets the fraction of positions whose greedy tokens agree, or NaN for no positions.</summary>
    public double Top1Agreement => TokenCount > 0 ? (double)Top1Matches / TokenCount : double.NaN;

    /// <summary>Gets the mean fraction of the teacher's top-k that is also in the student's top-k, or NaN.</summary>
    public double TopKOverlap => TokenCount > 0 ? TopKOverlapSum / TokenCount : double.NaN;

    /// <summary>Gets the mean per-position forward KL(p_teacher ‖ p_student), or NaN.</summary>
    public double MeanKl => TokenCount > 0 ? KlSum / TokenCount : double.NaN;

    /// <summary>Combines two partial results computed with the same k.</summary>
    /// <param name="other">The other partial result.</param>
    /// <returns>The combined result.</returns>
    public DiagnosticsResult Add(DiagnosticsResult other)
    {
        if (TokenCount > 0 && other.TokenCount > 0 && other.TopK != TopK)
        {
            throw new ArgumentException($"Cannot combine diagnostics with top-k {TopK} and {other.TopK}.", nameof(other));
        }

        return new(TokenCount > 0 ? TopK : other.TopK, TokenCount + other.TokenCount, Top1Matches + other.Top1Matches,
            TopKOverlapSum + other.TopKOverlapSum, KlSum + other.KlSum);
    }
}

/// <summary>Distillation diagnostics from student and teacher logits of the same positions (same vocabulary).</summary>
public static class DistillationDiagnostics
{
    /// <summary>Computes top-1 agreement, top-k overlap and per-position KL(teacher ‖ student) over masked positions.</summary>
    /// <param name="studentLogits">[B, T, V] or [N, V]; any float dtype (softmax is done in float32).</param>
    /// <param name="teacherLogits">Same shape as <paramref name="studentLogits"/>.</param>
    /// <param name="mask">[B, T] or [N]: bool (true = scored) or int64 labels (≠ −100 = scored).</param>
    /// <param name="topK">k for the top-k overlap, 1 ≤ k ≤ V.</param>
    /// <returns>Sums and counts over the scored positions.</returns>
    public static DiagnosticsResult Compute(Tensor studentLogits, Tensor teacherLogits, Tensor mask, int topK = 5)
    {
        ArgumentNullException.ThrowIfNull(studentLogits);
        ArgumentNullException.ThrowIfNull(teacherLogits);
        ArgumentNullException.ThrowIfNull(mask);
        if (!studentLogits.shape.SequenceEqual(teacherLogits.shape))
        {
            throw new ArgumentException(
                $"Student logits [{string.Join(", ", studentLogits.shape)}] and teacher logits [{string.Join(", ", teacherLogits.shape)}] must have the same shape (same vocabulary).",
                nameof(teacherLogits));
        }

        var positionShape = studentLogits.shape[..^1];
        if (studentLogits.dim() < 2 || !mask.shape.SequenceEqual(positionShape))
        {
            throw new ArgumentException(
                $"Mask [{string.Join(", ", mask.shape)}] must match the logits' positions [{string.Join(", ", positionShape)}].", nameof(mask));
        }

        var vocab = studentLogits.shape[^1];
        if (topK < 1 || topK > vocab)
        {
            throw new ArgumentOutOfRangeException(nameof(topK), topK, $"top-k must be in [1, {vocab}].");
        }

        using var scope = torch.NewDisposeScope();
        var keep = (mask.dtype == ScalarType.Bool ? mask : mask.ne(TorchScalars.Constant(DistillationBatch.IgnoreIndex))).reshape(-1).to(studentLogits.device); // [N]
        var student = studentLogits.reshape(-1, vocab)[keep].to_type(ScalarType.Float32); // [M, V]
        var teacher = teacherLogits.reshape(-1, vocab)[keep].to_type(ScalarType.Float32); // [M, V]
        var count = student.shape[0];
        if (count == 0)
        {
            return new DiagnosticsResult(topK, 0, 0, 0, 0);
        }

        var top1 = student.argmax(-1).eq(teacher.argmax(-1)).sum().item<long>();

        var studentTop = student.topk(topK, dim: -1).indexes; // [M, k]
        var teacherTop = teacher.topk(topK, dim: -1).indexes; // [M, k]
        // Indices are distinct within each row, so counting pairwise equalities counts the intersection.
        var shared = studentTop.unsqueeze(-1).eq(teacherTop.unsqueeze(-2)).sum(dim: [-1, -2]); // [M]
        var overlapSum = shared.to_type(ScalarType.Float64).sum().item<double>() / topK;

        var studentLogProbs = nn.functional.log_softmax(student, -1);
        var teacherLogProbs = nn.functional.log_softmax(teacher, -1);
        // kl_div(input = log q_student, target = log p_teacher) = Σ p_teacher (log p_teacher − log q_student) = KL(p_teacher ‖ q_student).
        var kl = nn.functional.kl_div(studentLogProbs, teacherLogProbs, reduction: nn.Reduction.Sum, log_target: true);
        var klSum = kl.to_type(ScalarType.Float64).item<double>();

        return new DiagnosticsResult(topK, count, top1, overlapSum, klSum);
    }

    /// <summary>
    /// Runs student and teacher over <paramref name="batches"/> (same tokenizer: both read the student tensors) without
    /// gradients, in eval mode, and accumulates the diagnostics over positions whose label is not −100.
    /// </summary>
    /// <param name="student">The student; its train/eval mode is restored afterwards.</param>
    /// <param name="teacher">The teacher, sharing the student's vocabulary; its mode is restored afterwards.</param>
    /// <param name="batches">Batches on the models' device.</param>
    /// <param name="topK">k for the top-k overlap.</param>
    /// <param name="cancellationToken">Checked between batches.</param>
    /// <returns>The diagnostics over all batches.</returns>
    public static DiagnosticsResult Compute(ICausalLM student, ICausalLM teacher, IEnumerable<DistillationBatch> batches, int topK = 5, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(student);
        ArgumentNullException.ThrowIfNull(teacher);
        ArgumentNullException.ThrowIfNull(batches);
        var studentTraining = student.Module.training;
        var teacherTraining = teacher.Module.training;
        student.Module.eval();
        teacher.Module.eval();
        try
        {
            using var noGrad = torch.no_grad();
            var total = new DiagnosticsResult(topK, 0, 0, 0, 0);
            foreach (var batch in batches)
            {
                cancellationToken.ThrowIfCancellationRequested();
                using var scope = torch.NewDisposeScope();
                var input = new CausalLMInput { InputIds = batch.InputIds, AttentionMask = batch.AttentionMask, PositionIds = batch.PositionIds };
                var studentLogits = student.Forward(input).Logits
                    ?? throw new InvalidOperationException($"{student.GetType().Name}.Forward returned no logits.");
                var teacherLogits = teacher.Forward(input).Logits
                    ?? throw new InvalidOperationException($"{teacher.GetType().Name}.Forward returned no logits.");
                total = total.Add(Compute(studentLogits, teacherLogits, batch.Labels, topK));
            }

            return total;
        }
        finally
        {
            if (studentTraining)
            {
                student.Module.train();
            }

            if (teacherTraining)
            {
                teacher.Module.train();
            }
        }
    }
}
