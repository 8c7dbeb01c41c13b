using static TorchSharp.torch;

namespace Distill.Losses;

/// <summary>The result of <see cref="Atkd.Compute"/>.</summary>
/// <param name="Loss">Scalar float32: α·NCKD_easy + (1−α)·(TCKD_hard + NCKD_hard), each group term normalised by its own token count.</param>
/// <param name="TokenCount">The number of scored positions (labels ≠ −100), int64 scalar on the logits' device.</param>
/// <param name="EasyCount">Scored positions in the easy group, int64 scalar.</param>
/// <param name="HardCount">Scored positions in the hard group, int64 scalar.</param>
/// <remarks>All four are device tensors: computing ATKD reads nothing back to the host.</remarks>
public readonly record struct AtkdResult(Tensor Loss, Tensor TokenCount, Tensor EasyCount, Tensor HardCount);

/// <summary>
/// Adaptive Teaching KD (ATKD, Zhong et al. 2024, <c>--kl_method atkd</c>): tokens are split at the batch median of the
/// teacher's uncertainty (non-target mass 1 − p_t(y)) into easy (strictly below the median) and hard tokens; easy tokens
/// get only the non-target (diversity) term, hard tokens the target and non-target terms.
/// </summary>
/// <remarks>
/// The split is over all scored tokens of the batch, and each group is normalised by its own count, so the loss is not a
/// sum of per-token terms. <c>torch.median</c> semantics: the lower median for an even count; the median token itself is
/// hard. <c>reverse</c> setting: student and teacher logits are swapped before everything (temperatures are not), which
/// turns both KL terms around; the split statistic is then the teacher's non-target mass at the student temperature.
/// </remarks>
public static class Atkd
{
    /// <summary>Computes the ATKD loss of one micro-batch.</summary>
    /// <param name="studentLogits">[B, T, V].</param>
    /// <param name="teacherLogits">[B, T, V].</param>
    /// <param name="labels">[B, T] int64, aligned; −100 = ignored.</param>
    /// <param name="alpha">α, weight of the easy group (ATKD default 0.2).</param>
    /// <param name="studentTemperature">T_s (ATKD hard-codes 1).</param>
    /// <param name="teacherTemperature">T_t (ATKD hard-codes 1).</param>
    /// <param name="reverse">The <c>reverse</c> setting.</param>
    /// <param name="emptyGroupIsNaN">Official behaviour: a group without scored tokens divides 0/0 and the loss is NaN. When false, an empty group contributes 0.</param>
    /// <returns>The loss and the counts.</returns>
    public static AtkdResult Compute(
        Tensor studentLogits, Tensor teacherLogits, Tensor labels, double alpha = 0.2, double studentTemperature = 1.0,
        double teacherTemperature = 1.0, bool reverse = false, bool emptyGroupIsNaN = false)
    {
        ArgumentNullException.ThrowIfNull(studentLogits);
        ArgumentNullException.ThrowIfNull(teacherLogits);
        ArgumentNullException.ThrowIfNull(labels);
        using var scope = NewDisposeScope();
        var (a, b) = reverse ? (teacherLogits, studentLogits) : (studentLogits, teacherLogits);
        var valid = TokenReduction.ValidMask(labels);
        var n = valid.sum();
        var (tckd, nckd) = Dkd.PerToken(a, b, labels, studentTemperature, teacherTemperature);
        Tensor easy;
        using (no_grad())
        {
            // Uncertainty: the non-target mass of the (possibly swapped) "teacher" side in vanilla, "student" side in reverse
            // — in both cases the real teacher's distribution.
            var unc = reverse ? Dkd.NonTargetMass(a, labels, studentTemperature) : Dkd.NonTargetMass(b, labels, teacherTemperature);
            easy = unc.lt(LowerMedian(unc, valid, n));
        }

        var easyMask = easy.logical_and(valid);
        var hardMask = easy.logical_not().logical_and(valid);
        var nEasy = easyMask.sum();
        var nHard = hardMask.sum();
        var easyNckd = GroupMean(nckd, easyMask, nEasy, emptyGroupIsNaN);
        var hardTckd = GroupMean(tckd, hardMask, nHard, emptyGroupIsNaN);
        var hardNckd = GroupMean(nckd, hardMask, nHard, emptyGroupIsNaN);
        var loss = easyNckd.Mul(alpha).Add(hardTckd.Add(hardNckd).Mul(1 - alpha));

        // No scored token: zero loss that still depends on the student (so backward works), not NaN — in either mode.
        var zero = studentLogits.to(ScalarType.Float32).sum().Mul(0);
        loss = where(n.gt(TorchScalars.Constant(0)), loss, zero);
        return new AtkdResult(loss.MoveToOuterDisposeScope(), n.MoveToOuterDisposeScope(), nEasy.MoveToOuterDisposeScope(), nHard.MoveToOuterDisposeScope());
    }

    /// <summary>
    /// <c>torch.median</c> of the scored values (the lower median for an even count) without a host read: the
    /// ⌊(n − 1)/2⌋-th smallest, ignored positions sorted last as +inf. +inf when nothing is scored.
    /// </summary>
    private static Tensor LowerMedian(Tensor values, Tensor valid, Tensor count)
    {
        var sorted = values.masked_fill(valid.logical_not(), TorchScalars.Constant(double.PositiveInfinity)).reshape(-1).sort().Values;
        var k = count.Sub(1).clamp_min(TorchScalars.Constant(0)).div(TorchScalars.Constant(2), rounding_mode: RoundingMode.floor).reshape(1);
        return sorted.gather(0, k).squeeze(0);
    }

    private static Tensor GroupMean(Tensor perToken, Tensor mask, Tensor count, bool emptyIsNaN)
    {
        var sum = TokenReduction.MaskedSum(perToken, mask);
        var mean = sum / count.clamp_min(TorchScalars.Constant(1)).to(ScalarType.Float32);
        // 0/0 = NaN reproduces ATKD for an empty group; else an empty group adds nothing (its sum is 0, so mean = 0).
        // The NaN is a constant: a where() over a NaN-valued branch with gradient would poison the other branch's gradient.
        return emptyIsNaN ? where(count.gt(TorchScalars.Constant(0)), mean, full_like(mean, TorchScalars.Constant(double.NaN))) : mean;
    }
}
