namespace Distill.Quickstart;

/// <summary>Which training examples a student row sees.</summary>
public enum TrainingSet
{
    /// <summary>Only the labelled examples, with their reference answers.</summary>
    Labelled,

    /// <summary>The labelled examples with their reference answers plus the unlabelled prompts with the teacher's greedy answers.</summary>
    TeacherAnswers,
}

/// <summary>One student row of the quickstart table: its key, display name, objective and data.</summary>
/// <param name="Key">The key used on the command line (<c>--methods</c>) and in the JSON results.</param>
/// <param name="Row">The row name in the table.</param>
/// <param name="Objective">The objective name of <c>AddDistillLosses()</c>.</param>
/// <param name="Data">The training examples.</param>
/// <param name="OnPolicy">Whether the responses of a batch are, with probability λ, replaced by the student's own samples (GKD).</param>
public sealed record QuickstartMethod(string Key, string Row, string Objective, TrainingSet Data, bool OnPolicy = false)
{
    /// <summary>Gets a value indicating whether the method reads the teacher's logits while training.</summary>
    public bool UsesTeacherLogits => Objective is not ("sft" or "seqkd");
}

/// <summary>The student rows of the quickstart table, in table order.</summary>
public static class QuickstartMethods
{
    /// <summary>Plain SFT on the labelled set: the baseline.</summary>
    public static QuickstartMethod Sft { get; } = new("sft", "SFT (labels only)", "sft", TrainingSet.Labelled);

    /// <summary>Logit KD (forward KL, DSKD's (1 − α)·CE + α·KL) on the same labelled set: the same-data comparison.</summary>
    public static QuickstartMethod KdLabels { get; } = new("kd-labels", "KD on labels (forward KL)", "forward_kl", TrainingSet.Labelled);

    /// <summary>SeqKD: CE on the teacher's answers to the unlabelled prompts (plus the labelled set).</summary>
    public static QuickstartMethod SeqKd { get; } = new("seqkd", "SeqKD (teacher answers, CE)", "seqkd", TrainingSet.TeacherAnswers);

    /// <summary>Logit KD (forward KL) on the teacher-answer sequences.</summary>
    public static QuickstartMethod KdSeqKd { get; } = new("kd-seqkd", "KD on teacher answers (forward KL)", "forward_kl", TrainingSet.TeacherAnswers);

    /// <summary>
    /// On-policy distillation (GKD): with probability λ a batch's responses are the student's own samples on its prompts,
    /// otherwise the teacher-answer sequences; the teacher scores them with GKD's generalised JSD (β = 0.5).
    /// </summary>
    public static QuickstartMethod OnPolicy { get; } = new("on-policy", "on-policy (GKD λ, JSD)", "gkd_jsd", TrainingSet.TeacherAnswers, OnPolicy: true);

    /// <summary>ATKD's adaptive-teaching objective (<c>--kl_method atkd</c>) on the teacher-answer sequences (<c>--sample_source teacher</c>).</summary>
    public static QuickstartMethod Atkd { get; } = new("atkd", "ATKD (teacher answers)", "atkd", TrainingSet.TeacherAnswers);

    /// <summary>Gets every student row, in table order.</summary>
    public static IReadOnlyList<QuickstartMethod> All { get; } = [Sft, KdLabels, SeqKd, KdSeqKd, OnPolicy, Atkd];
}
