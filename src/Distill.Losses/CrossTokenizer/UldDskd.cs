using Distill.Losses.DualSpace;
using static TorchSharp.torch;

namespace Distill.Losses.CrossTokenizer;

/// <summary>
/// Universal Logit Distillation as DSKD re-implements it (<c>code/criterions/universal_logit_distillation.py</c> of
/// songmzhang/DSKD), registered as <c>uld_dskd</c>. For the original llm-recipes loss use <see cref="UldObjective"/> (<c>uld</c>).
/// </summary>
/// <remarks>
/// <list type="number">
/// <item>Each row of student logits/labels is rotated left so that it starts at its first label ≠ −100; the teacher's rows
/// likewise with the teacher's labels. Rotated position k of the student and of the teacher are compared (answers aligned
/// by position from their first token).</item>
/// <item>Probabilities at T = 1 (DSKD ignores <c>--kd-temperature</c> here), sorted descending, the narrower vocabulary
/// zero-padded; ULD_sum = Σ over positions where both rotated labels are ≠ −100 of Σ_v |q_sorted − p_sorted| (no ½).
/// EOS is compared on both sides.</item>
/// <item>L = (1 − α)·CE_sum + α·ULD_sum, normalised by the student's token count (the trainer).</item>
/// </list>
/// DSKD pads student and teacher to the same length; with different lengths only the first min(L_s, L_t) rotated positions
/// can be compared, which is what the official code computes whenever its padding is long enough. The official code
/// rotates the logits and labels <b>in place</b>; here nothing the caller owns is modified.
/// </remarks>
public sealed class UldDskdObjective : IDistillationObjective
{
    /// <summary>The registered name.</summary>
    public const string RegisteredName = "uld_dskd";

    private readonly UldDskdOptions options;

    /// <summary>Creates the objective.</summary>
    /// <param name="options">Options; validated here.</param>
    /// <exception cref="ArgumentException">Invalid options.</exception>
    public UldDskdObjective(UldDskdOptions? options = null)
    {
        this.options = options ?? new UldDskdOptions();
        OptionChecks.ThrowIfInvalid(new UldDskdOptionsValidator(), this.options, nameof(options));
    }

    /// <inheritdoc />
    public string Name => RegisteredName;

    /// <inheritdoc />
    /// <remarks>Dense teacher logits, or sparse top-k targets of the teacher's tokens (as <c>uld</c>; DSKD's variant has no temperature).</remarks>
    public ObjectiveRequirements Requirements => CrossTokenizerRequirements.SortedProbabilitiesAndTeacherTokens;

    /// <inheritdoc />
    public nn.Module? Module => null;

    /// <inheritdoc />
    public void Validate(ObjectiveSetup setup) => ObjectiveChecks.Validate(Name, Requirements, setup, sliceToSharedVocabulary: false, chunked: false);

    /// <inheritdoc />
    public ObjectiveResult Compute(ObjectiveContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var (_, teacherLabels) = ContextChecks.TeacherTokens(context, Name);
        var zs = ContextChecks.StudentLogits(context, Name);
        var teacher = UldTeacher.From(context, Name);
        ContextChecks.SameSize(teacherLabels, "teacher labels", teacher.Logits ?? teacher.TopKLogProbs!, teacher.IsSparse ? "teacher top-k log-probs" : "teacher logits", 1, Name);
        ContextChecks.SameSize(context.Batch.Labels, "student labels", zs, "student logits", 1, Name);
        var (loss, ce, uld) = Compute(zs, teacher, context.Batch.Labels, teacherLabels, options.Alpha);
        var metrics = new Dictionary<string, Tensor>(StringComparer.Ordinal)
        {
            ["ce"] = DskdMath.Metric(ce),
            ["uld"] = DskdMath.Metric(uld),
        };
        return ObjectiveResult.FromTokens(loss, context.Batch.Labels, metrics);
    }

    /// <summary>DSKD's ULD loss (pure function over tensors).</summary>
    /// <param name="studentLogits">[B, L_s, V_s].</param>
    /// <param name="teacherLogits">[B, L_t, V_t].</param>
    /// <param name="labels">Student labels [B, L_s], aligned with logits.</param>
    /// <param name="teacherLabels">Teacher labels [B, L_t], aligned with the teacher's logits.</param>
    /// <param name="alpha">α.</param>
    /// <returns>The loss sum, the CE sum and the ULD sum (float32 scalars).</returns>
    internal static (Tensor Loss, Tensor CrossEntropy, Tensor Uld) Compute(Tensor studentLogits, Tensor teacherLogits, Tensor labels, Tensor teacherLabels, double alpha) =>
        Compute(studentLogits, new UldTeacher(teacherLogits, null, null), labels, teacherLabels, alpha);

    /// <summary>DSKD's ULD loss against dense or sparse teacher rows (<see cref="UldTeacher"/>).</summary>
    internal static (Tensor Loss, Tensor CrossEntropy, Tensor Uld) Compute(Tensor studentLogits, UldTeacher teacher, Tensor labels, Tensor teacherLabels, double alpha)
    {
        using var scope = NewDisposeScope();
        var ce = DskdMath.CrossEntropySum(studentLogits, labels);
        var (s0, _) = UldMath.StartAndCount(labels);
        var (t0, _) = UldMath.StartAndCount(teacherLabels);
        var k = Math.Min(studentLogits.shape[1], teacher.Length);

        // Rotate each row to start at its first scored position: [B, K] labels, [B, K, V] logits.
        var ys = UldMath.GatherRows(labels, s0, k);
        var yt = UldMath.GatherRows(teacherLabels, t0, k);
        var both = TokenReduction.ValidMask(ys).logical_and(TokenReduction.ValidMask(yt)); // [B, K]
        var zs = UldMath.GatherRows(studentLogits, s0, k);                                  // [B, K, V_s]
        // Masked sum over [B, K] rather than boolean indexing, which would read the mask back to the host.
        var uld = TokenReduction.MaskedSum(teacher.Distance(zs, t0, k, 1.0, RegisteredName), both);
        var loss = ce.Mul(1.0 - alpha).Add(uld.Mul(alpha));
        return (loss.MoveToOuterDisposeScope(), ce.MoveToOuterDisposeScope(), uld.MoveToOuterDisposeScope());
    }
}
