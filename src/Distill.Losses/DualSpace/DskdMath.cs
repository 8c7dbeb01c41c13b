using static TorchSharp.torch;

namespace Distill.Losses.DualSpace;

/// <summary>
/// A DSKD distance function with <c>reduction="sum"</c>: <c>Σ_{b,l: mask} d(b, l)</c>, where <c>d</c> is the divergence between
/// the teacher and student distributions at temperature <c>T</c> (both logits divided by <c>T</c>, no T² factor).
/// </summary>
/// <param name="studentLogits">[B, L, V], with gradient.</param>
/// <param name="teacherLogits">[B, L, V], no gradient.</param>
/// <param name="mask">[B, L] bool, true where scored.</param>
/// <param name="temperature">T &gt; 0.</param>
/// <returns>A float32 scalar.</returns>
internal delegate Tensor DskdDistance(Tensor studentLogits, Tensor teacherLogits, Tensor mask, double temperature);

/// <summary>The pieces of DSKD's criterion code every dual-space and cross-tokenizer objective shares.</summary>
internal static class DskdMath
{
    /// <summary>The value DSKD writes into masked attention scores and empty logit rows.</summary>
    internal const double NegativeFill = -100000.0;

    /// <summary>
    /// DSKD's <c>compute_cross_entropy_loss</c> summed: <c>Σ_{labels ≠ −100} −log_softmax(z)[label]</c> in float32
    /// (<see cref="CrossEntropy.PerToken"/>, masked sum).
    /// </summary>
    /// <param name="logits">[B, L, V] any float dtype.</param>
    /// <param name="labels">[B, L] int64, −100 = ignored.</param>
    /// <returns>A float32 scalar.</returns>
    /// <remarks>
    /// The official code first zeroes NaN/±inf logits <b>in place</b> (which also changes any later use of the same tensor);
    /// that guard is not reproduced: the losses package reports non-finite logits instead.
    /// </remarks>
    internal static Tensor CrossEntropySum(Tensor logits, Tensor labels)
    {
        using var scope = NewDisposeScope();
        return TokenReduction.MaskedSum(CrossEntropy.PerToken(logits, labels), TokenReduction.ValidMask(labels)).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// DSKD's <c>compute_forward_kl_divergence</c> with <c>reduction="sum"</c> over <paramref name="mask"/>:
    /// Σ_v p·(log p − log q), p = softmax(z_t/T), q = softmax(z_s/T), KL(p_teacher ‖ q_student) (<see cref="ForwardKl.PerToken(Tensor, Tensor, double)"/>).
    /// </summary>
    /// <param name="studentLogits">[.., V].</param>
    /// <param name="teacherLogits">[.., V].</param>
    /// <param name="mask">[..] bool.</param>
    /// <param name="temperature">T.</param>
    /// <returns>A float32 scalar.</returns>
    internal static Tensor ForwardKlSum(Tensor studentLogits, Tensor teacherLogits, Tensor mask, double temperature) =>
        Masked(ForwardKl.PerToken(studentLogits, teacherLogits, temperature), mask);

    /// <summary>Masked float32 sum of a per-token tensor (disposes nothing the caller owns).</summary>
    internal static Tensor Masked(Tensor perToken, Tensor mask)
    {
        using var scope = NewDisposeScope();
        return TokenReduction.MaskedSum(perToken, mask).MoveToOuterDisposeScope();
    }

    /// <summary>A detached float32 scalar for the metrics dictionary.</summary>
    internal static Tensor Metric(Tensor value) => value.detach().to(ScalarType.Float32);

    /// <summary>Looks up rows of an embedding table: <c>weight[ids]</c>.</summary>
    /// <param name="weight">[V, H].</param>
    /// <param name="ids">[B, L] int64.</param>
    /// <returns>[B, L, H].</returns>
    internal static Tensor Embed(Tensor weight, Tensor ids)
    {
        var flat = weight.index_select(0, ids.reshape(-1));
        return flat.reshape(ids.shape[0], ids.shape[1], weight.shape[1]);
    }
}
