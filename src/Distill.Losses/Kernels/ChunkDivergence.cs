using static TorchSharp.torch;

namespace Distill.Losses.Kernels;

/// <summary>
/// The loss a fused kernel evaluates on one chunk of rows: a summed (masked) loss from student logits [c, V], teacher
/// logits [c, V] (or an undefined tensor when the objective is teacher-free) and labels [c].
/// </summary>
/// <remarks>
/// The kernel differentiates <see cref="Sum"/> with autograd on the chunk (any divergence works); a subclass may also
/// supply the gradient analytically (<see cref="TrySumAndGradient"/>) to skip the chunk-level autograd graph.
/// </remarks>
internal abstract class ChunkDivergence
{
    /// <summary>Gets a value indicating whether the divergence reads teacher logits.</summary>
    public virtual bool NeedsTeacher => true;

    /// <summary>The summed loss of the chunk (scalar float32), differentiable w.r.t. <paramref name="studentLogits"/>.</summary>
    public abstract Tensor Sum(Tensor studentLogits, Tensor? teacherLogits, Tensor labels);

    /// <summary>Optionally the loss and dLoss/dStudentLogits [c, V] in closed form; false to let the kernel use autograd.</summary>
    public virtual bool TrySumAndGradient(Tensor studentLogits, Tensor? teacherLogits, Tensor labels, out Tensor sum, out Tensor gradient)
    {
        sum = null!;
        gradient = null!;
        return false;
    }
}

/// <summary>A chunk loss given by a function of (student logits, teacher logits, labels).</summary>
internal sealed class FunctionChunkDivergence(Func<Tensor, Tensor?, Tensor, Tensor> sum, bool needsTeacher = true) : ChunkDivergence
{
    public override bool NeedsTeacher => needsTeacher;

    public override Tensor Sum(Tensor studentLogits, Tensor? teacherLogits, Tensor labels) => sum(studentLogits, teacherLogits, labels);
}

/// <summary>
/// (1 − α)·CE + α·KL(p_t || q_s) at temperature T, summed over scored rows, with its closed-form gradient
/// dL/ds = (1 − α)·(softmax(s) − onehot(y)) + (α / T)·(softmax(s/T) − softmax(t/T)) on scored rows, 0 elsewhere.
/// α = 1 gives pure forward KL (the benchmark's loss). Chunks holding ±inf logits fall back to autograd of the masked
/// formula.
/// </summary>
internal sealed class ForwardKlChunkDivergence(double kdRate, double temperature) : ChunkDivergence
{
    public override Tensor Sum(Tensor studentLogits, Tensor? teacherLogits, Tensor labels)
    {
        var mask = TokenReduction.ValidMask(labels);
        var kd = TokenReduction.MaskedSum(ForwardKl.PerToken(studentLogits, teacherLogits!, temperature), mask);
        if (kdRate >= 1)
        {
            return kd;
        }

        var ce = TokenReduction.MaskedSum(CrossEntropy.PerToken(studentLogits, labels), mask);
        return (1 - kdRate) * ce + kdRate * kd;
    }

    public override bool TrySumAndGradient(Tensor studentLogits, Tensor? teacherLogits, Tensor labels, out Tensor sum, out Tensor gradient)
    {
        sum = null!;
        gradient = null!;
        if (studentLogits.isinf().any().item<bool>() || teacherLogits!.isinf().any().item<bool>())
        {
            return false;
        }

        var ignored = labels.eq(DistillationBatch.IgnoreIndex).unsqueeze(-1);       // [c, 1]
        var s = LossMath.Scale(studentLogits, temperature);
        var logQ = s.log_softmax(-1);                                                 // [c, V]
        var logP = LossMath.Scale(teacherLogits, temperature).log_softmax(-1);
        var p = logP.exp();
        var kdRows = logP.sub(logQ).mul_(p).sum(-1, keepdim: true);                   // Σ_v p (log p − log q)
        var kd = kdRows.masked_fill_(ignored, 0.0).sum();
        var grad = logQ.exp_().sub_(p);                                                // softmax(s/T) − p_t
        if (temperature != 1.0)
        {
            grad.div_(temperature);
        }

        if (kdRate >= 1)
        {
            sum = kd;
            gradient = grad.masked_fill_(ignored, 0.0);
            return true;
        }

        grad.mul_(kdRate);
        var logQ1 = studentLogits.to(ScalarType.Float32).log_softmax(-1);
        var target = LossMath.SafeTargets(labels).unsqueeze(-1);
        var ceRows = -logQ1.gather(-1, target);
        var ce = ceRows.masked_fill_(ignored, 0.0).sum();
        var ceGrad = logQ1.exp_().scatter_add_(-1, target, full_like(ceRows, -1.0));  // softmax(s) − onehot(y)
        grad.add_(ceGrad, alpha: 1 - kdRate);
        sum = (1 - kdRate) * ce + kdRate * kd;
        gradient = grad.masked_fill_(ignored, 0.0);
        return true;
    }
}
