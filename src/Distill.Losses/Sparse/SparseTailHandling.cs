namespace Distill.Losses;

/// <summary>How a sparse objective treats the teacher's probability mass outside its top-k entries.</summary>
/// <remarks>See docs/teachers.md for which choice reproduces which reference.</remarks>
public enum SparseTailHandling
{
    /// <summary>
    /// Ignore the tail: the teacher's top-k probabilities are renormalised to sum to one and every other token gets
    /// probability 0. Equals the dense objective against a teacher whose logits are −inf outside its top-k (DistillKit
    /// <c>MissingProbabilityHandling.ZERO</c> for forward KL). The student keeps its full-vocabulary distribution.
    /// </summary>
    Renormalize,

    /// <summary>
    /// Keep the tail as one extra bucket: teacher [p_1 … p_k, p_tail] with p_tail from the stored log tail mass, student
    /// [q_1 … q_k, 1 − Σ q_k]; both sum to one (DistillKit <c>MissingProbabilityHandling.SYMMETRIC_UNIFORM</c>).
    /// </summary>
    TailBucket,
}
