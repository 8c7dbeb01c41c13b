using static TorchSharp.torch;

namespace Distill.Losses.Kernels;

/// <summary>
/// Chunked ATKD: the same loss and gradients as <see cref="Atkd.Compute"/>, times the scored-token count N, evaluated
/// chunk by chunk in two passes (divide the kernel's sum by N for ATKD's L).
/// </summary>
/// <remarks>
/// <para>
/// The easy/hard split is at the batch median of the teacher's non-target mass, and each group is normalised by its own
/// count, so no chunk can be scored before every row's statistic is known. Pass 1 (<see cref="Prepare"/>) walks the
/// teacher's chunks only (no student projection) and keeps one float per row; the median, the groups and their counts
/// then give each row two weights, w_T = (1 − α)·N/N_hard on hard rows (TCKD) and w_N = α·N/N_easy on easy rows,
/// (1 − α)·N/N_hard on hard rows (NCKD). Pass 2 (the kernel's loss pass) sums w_T·TCKD + w_N·NCKD per chunk, which is
/// L·N = N·(α·mean_easy NCKD + (1 − α)·(mean_hard TCKD + mean_hard NCKD)).
/// </para>
/// <para>
/// Same conventions as the full-logits objective: <c>torch.median</c> (lower median), strict "easy = below the median",
/// the <c>reverse</c> setting swaps the logits (not the temperatures) and takes the real teacher's non-target mass at the
/// student temperature; with no scored token the loss is 0; an empty group makes the loss NaN when
/// <paramref name="emptyGroupIsNaN"/> (official behaviour; the gradients then stay finite) and contributes 0 otherwise.
/// A teacher given as hidden states + lm_head computes its chunk logits once per pass.
/// </para>
/// </remarks>
/// <param name="alpha">α, the weight of the easy group.</param>
/// <param name="studentTemperature">T_s.</param>
/// <param name="teacherTemperature">T_t.</param>
/// <param name="reverse">The <c>reverse</c> setting.</param>
/// <param name="emptyGroupIsNaN">Official behaviour for an empty easy or hard group.</param>
internal sealed class AtkdChunkDivergence(double alpha, double studentTemperature, double teacherTemperature, bool reverse, bool emptyGroupIsNaN)
    : ChunkDivergence
{
    /// <inheritdoc/>
    public override ChunkDivergence Prepare(TeacherSource teacher, Tensor labels, int chunkSize, long vocab)
    {
        ArgumentNullException.ThrowIfNull(teacher);
        ArgumentNullException.ThrowIfNull(labels);
        long n = labels.shape[0];
        var valid = TokenReduction.ValidMask(labels);
        var count = valid.sum().item<long>();
        var uncertainty = empty(n, dtype: ScalarType.Float32, device: labels.device);
        using (no_grad())
        {
            for (long start = 0; start < n; start += chunkSize)
            {
                using var chunkScope = NewDisposeScope();
                var length = Math.Min(chunkSize, n - start);
                var t = teacher.Chunk(start, length, vocab)
                    ?? throw new InvalidOperationException("Chunked ATKD needs the teacher, but neither teacher logits nor teacher hidden states + lm_head were given.");
                var y = labels.narrow(0, start, length);
                // The real teacher's non-target mass: at T_t in vanilla, at T_s in reverse (where the logits are swapped).
                var mass = Dkd.NonTargetMass(t, y, reverse ? studentTemperature : teacherTemperature);
                uncertainty.narrow(0, start, length).copy_(mass);
            }
        }

        if (count == 0)
        {
            var none = zeros(n, dtype: ScalarType.Float32, device: labels.device);
            return new Prepared(this, none, none, addNaN: false);
        }

        var median = uncertainty.masked_select(valid).median();
        var easy = uncertainty.lt(median);
        var easyMask = easy.logical_and(valid);
        var hardMask = easy.logical_not().logical_and(valid);
        var nEasy = easyMask.sum().item<long>();
        var nHard = hardMask.sum().item<long>();
        var easyWeight = nEasy > 0 ? alpha * count / nEasy : 0.0;
        var hardWeight = nHard > 0 ? (1 - alpha) * count / nHard : 0.0;
        var zero = zeros(n, dtype: ScalarType.Float32, device: labels.device);
        var tckdWeight = zero.MaskedFill(hardMask, hardWeight);
        var nckdWeight = tckdWeight.MaskedFill(easyMask, easyWeight);
        return new Prepared(this, tckdWeight, nckdWeight, addNaN: emptyGroupIsNaN && (nEasy == 0 || nHard == 0));
    }

    /// <inheritdoc/>
    public override Tensor Sum(Tensor studentLogits, Tensor? teacherLogits, Tensor labels, long start) =>
        throw new InvalidOperationException("Chunked ATKD: Prepare must run first (the batch-median split needs every row's statistic).");

    private Tensor ChunkSum(Tensor studentLogits, Tensor teacherLogits, Tensor labels, Tensor tckdWeight, Tensor nckdWeight)
    {
        var (a, b) = reverse ? (teacherLogits, studentLogits) : (studentLogits, teacherLogits);
        var (tckd, nckd) = Dkd.PerToken(a, b, labels, studentTemperature, teacherTemperature);
        return TokenReduction.MaskedSum((tckd * tckdWeight).Add(nckd * nckdWeight), TokenReduction.ValidMask(labels));
    }

    /// <summary>ATKD bound to one batch: per-row TCKD and NCKD weights from pass 1.</summary>
    private sealed class Prepared(AtkdChunkDivergence owner, Tensor tckdWeight, Tensor nckdWeight, bool addNaN) : ChunkDivergence
    {
        public override Tensor Sum(Tensor studentLogits, Tensor? teacherLogits, Tensor labels, long start)
        {
            var length = labels.shape[0];
            var sum = owner.ChunkSum(studentLogits, teacherLogits!, labels, tckdWeight.narrow(0, start, length), nckdWeight.narrow(0, start, length));
            // Official: an empty group divides 0/0, so the whole loss is NaN (added once, on the first chunk).
            return addNaN && start == 0 ? sum.Add(double.NaN) : sum;
        }
    }
}
