namespace Distill.Losses;

/// <summary>The names under which <c>AddDistillLosses()</c> registers its objectives (the papers' <c>KD_OBJ</c> / <c>--kl_method</c> strings).</summary>
public static class ObjectiveNames
{
    /// <summary>DSKD forward KL, (1−α)·CE + α·KL(p_t || q_s).</summary>
    public const string ForwardKl = "forward_kl";

    /// <summary>DSKD reverse KL, (1−α)·CE + α·KL(q_s || p_t).</summary>
    public const string ReverseKl = "reverse_kl";

    /// <summary>DSKD JS divergence.</summary>
    public const string JsDivergence = "js_divergence";

    /// <summary>DSKD skew forward KL (λ).</summary>
    public const string SkewedForwardKl = "skewed_forward_kl";

    /// <summary>DSKD skew reverse KL (λ).</summary>
    public const string SkewedReverseKl = "skewed_reverse_kl";

    /// <summary>DSKD adaptive KL (α).</summary>
    public const string AdaptiveKl = "adaptive_kl";

    /// <summary>ATKD <c>forward</c>: pure forward KL.</summary>
    public const string AtkdForward = "atkd_forward";

    /// <summary>ATKD <c>reverse</c>: pure reverse KL.</summary>
    public const string AtkdReverse = "atkd_reverse";

    /// <summary>ATKD <c>jsd</c>: a true JSD (official: 0.9·FKL + 0.1·RKL).</summary>
    public const string AtkdJsd = "atkd_jsd";

    /// <summary>ATKD <c>tvd</c>: total variation distance.</summary>
    public const string AtkdTvd = "atkd_tvd";

    /// <summary>ATKD <c>dkd</c>: α·TCKD + β·NCKD.</summary>
    public const string AtkdDkd = "atkd_dkd";

    /// <summary>ATKD adaptive teaching (<c>--kl_method atkd</c>).</summary>
    public const string Atkd = "atkd";

    /// <summary>Sequence-level KD: plain CE on teacher-generated sequences (ATKD <c>seqkd</c>); same computation as <see cref="Sft"/>.</summary>
    public const string SeqKd = "seqkd";

    /// <summary>Plain supervised cross-entropy, teacher-free.</summary>
    public const string Sft = "sft";

    /// <summary>GKD generalised JSD(β), pure KD.</summary>
    public const string GkdJsd = "gkd_jsd";

    /// <summary>Suffix of the fused chunked variants (e.g. <c>forward_kl_chunked</c>) that take student hidden states and never build full logits.</summary>
    public const string ChunkedSuffix = "_chunked";
}
