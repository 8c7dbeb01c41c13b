using Distill.Losses.DualSpace;
using static TorchSharp.torch;

namespace Distill.Losses.CrossTokenizer;

/// <summary>
/// Universal Logit Distillation (Boizard et al., arXiv:2402.12030) exactly as the original training code computes it
/// (<c>models/distillation_model.py</c> <c>DistillationLoss</c> of Nicolas-BZRD/llm-recipes), registered as <c>uld</c>.
/// For DSKD's re-implementation use <see cref="UldDskdObjective"/> (<c>uld_dskd</c>).
/// </summary>
/// <remarks>
/// <para><b>Labels.</b> llm-recipes uses HF's unshifted labels (label[t] = input[t] on answer tokens) and takes logit row
/// a = (length of the leading −100 run) − 1, the row that predicts the first answer token, and n = #(label ≠ −100) rows.
/// With Distill's aligned labels (aligned[t] = unshifted[t + 1]) the same rows are: a = the first index with an aligned label
/// ≠ −100, n = the number of aligned labels ≠ −100. The two agree whenever every row starts with at least one prompt token
/// (ULD's data always does: BOS + prompt).</para>
/// <para><b>Loss.</b> Per sample i: n_s ← n_s − 1 when <see cref="UldOptions.SkipStudentEos"/> (the student's EOS; teacher answers
/// have none), m_i = min(n_s, n_t); d_i = (1/m_i)·Σ_{k&lt;m_i} Σ_v |sort↓ softmax(z_s[a_s+k]/T_s) − sort↓ softmax(z_t[a_t+k]/T_t)|
/// with the narrower vocabulary zero-padded. ULD = λ·mean_i d_i; loss = CE_mean + ULD, where CE_mean is HF's mean token
/// cross-entropy over all student labels (EOS included). A sample with m_i = 0 gives d_i = 0 (the original divides by zero).</para>
/// <para><b>Normalisation.</b> The paper's loss is a per-batch mean, not a per-token sum. <see cref="Compute(ObjectiveContext)"/> therefore returns the
/// batch loss itself as <see cref="ObjectiveResult.LossSum"/> with <see cref="ObjectiveResult.Normalizer"/> = 1, so the trainer's
/// division by the window's token count becomes a division by the number of micro-batches: exactly llm-recipes'
/// <c>loss / gradient_accumulation_steps</c>.</para>
/// </remarks>
public sealed class UldObjective : IDistillationObjective
{
    /// <summary>The registered name.</summary>
    public const string RegisteredName = "uld";

    private readonly UldOptions options;

    /// <summary>Creates the objective.</summary>
    /// <param name="options">Options; validated here.</param>
    /// <exception cref="ArgumentException">Invalid options.</exception>
    public UldObjective(UldOptions? options = null)
    {
        this.options = options ?? new UldOptions();
        OptionChecks.ThrowIfInvalid(new UldOptionsValidator(), this.options, nameof(options));
    }

    /// <inheritdoc />
    public string Name => RegisteredName;

    /// <inheritdoc />
    /// <remarks>Dense teacher logits, or sparse top-k targets of the teacher's tokens (an offline cache built with
    /// <c>TeacherCacheTokens.Teacher</c>, or a remote teacher) at teacher temperature 1: see docs/teachers.md for what is exact.</remarks>
    public ObjectiveRequirements Requirements => CrossTokenizerRequirements.SortedProbabilitiesAndTeacherTokens;

    /// <inheritdoc />
    public nn.Module? Module => null;

    /// <inheritdoc />
    public void Validate(ObjectiveSetup setup)
    {
        ObjectiveChecks.Validate(Name, Requirements, setup, sliceToSharedVocabulary: false, chunked: false);
        if (setup.Teacher is { } teacher && !teacher.Capabilities.HasFlag(TeacherCapabilities.DenseLogits) && options.TeacherTemperature != 1.0)
        {
            throw new InvalidOperationException($"Objective '{Name}': the teacher provides sparse top-k log-probabilities at temperature 1 only, but {nameof(UldOptions.TeacherTemperature)} = {options.TeacherTemperature}; set it to 1 or use a local teacher.");
        }
    }

    /// <inheritdoc />
    public ObjectiveResult Compute(ObjectiveContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var (_, teacherLabels) = ContextChecks.TeacherTokens(context, Name);
        var zs = ContextChecks.StudentLogits(context, Name);
        var teacher = UldTeacher.From(context, Name);
        ContextChecks.SameSize(teacherLabels, "teacher labels", teacher.Logits ?? teacher.TopKLogProbs!, teacher.IsSparse ? "teacher top-k log-probs" : "teacher logits", 1, Name);
        ContextChecks.SameSize(context.Batch.Labels, "student labels", zs, "student logits", 1, Name);
        var (loss, ce, uld) = Compute(zs, teacher, context.Batch.Labels, teacherLabels, options);
        var metrics = new Dictionary<string, Tensor>(StringComparer.Ordinal)
        {
            ["ce"] = DskdMath.Metric(ce),
            ["uld"] = DskdMath.Metric(uld),
        };
        return ObjectiveResult.FromMean(loss, context.Batch.Labels, metrics); // a per-batch mean: normaliser 1 per micro-batch (see remarks)
    }

    /// <summary>The original ULD loss (pure function over tensors).</summary>
    /// <param name="studentLogits">[B, L_s, V_s].</param>
    /// <param name="teacherLogits">[B, L_t, V_t].</param>
    /// <param name="labels">Student labels [B, L_s], aligned with logits (see remarks for the mapping from HF labels).</param>
    /// <param name="teacherLabels">Teacher labels [B, L_t], aligned.</param>
    /// <param name="options">λ, temperatures, EOS handling.</param>
    /// <returns>CE_mean + λ·ULD, CE_mean and λ·ULD (float32 scalars).</returns>
    internal static (Tensor Loss, Tensor CrossEntropy, Tensor Uld) Compute(Tensor studentLogits, Tensor teacherLogits, Tensor labels, Tensor teacherLabels, UldOptions options) =>
        Compute(studentLogits, new UldTeacher(teacherLogits, null, null), labels, teacherLabels, options);

    /// <summary>The original ULD loss against dense or sparse teacher rows (<see cref="UldTeacher"/>).</summary>
    internal static (Tensor Loss, Tensor CrossEntropy, Tensor Uld) Compute(Tensor studentLogits, UldTeacher teacher, Tensor labels, Tensor teacherLabels, UldOptions options)
    {
        using var scope = NewDisposeScope();
        var count = TokenReduction.ValidMask(labels).sum().clamp_min(TorchScalars.Constant(1)).to(ScalarType.Float32);
        var ce = DskdMath.CrossEntropySum(studentLogits, labels) / count; // HF mean over all student labels

        var (aS, nS) = UldMath.StartAndCount(labels);
        var (aT, nT) = UldMath.StartAndCount(teacherLabels);
        if (options.SkipStudentEos)
        {
            nS = nS.Sub(1).clamp_min(TorchScalars.Constant(0));
        }

        if (options.SkipTeacherEos)
        {
            nT = nT.Sub(1).clamp_min(TorchScalars.Constant(0));
        }

        var m = minimum(nS, nT);                                          // [B] aligned positions per sample
        // K rows per sample cover every aligned position (m ≤ min(L_s, L_t)); rows past m are masked below. A static K avoids
        // reading max(m) back to the host.
        var k = Math.Max(Math.Min(studentLogits.shape[1], teacher.Length), 1);
        var positions = TorchScalars.Arange(k, dtype: ScalarType.Int64, device: m.device).unsqueeze(0).lt(m.unsqueeze(1)); // [B, K]
        var zs = UldMath.GatherRows(studentLogits, aS, k).Div(options.StudentTemperature);   // rows a_s .. a_s + K − 1
        var perPosition = teacher.Distance(zs, aT, k, options.TeacherTemperature, RegisteredName); // [B, K]
        var perSample = where(positions, perPosition, zeros_like(perPosition)).sum(-1) / m.clamp_min(TorchScalars.Constant(1)).to(ScalarType.Float32);
        var uld = perSample.mean().Mul(options.Lambda);
        var loss = ce.Add(uld);
        return (loss.MoveToOuterDisposeScope(), ce.MoveToOuterDisposeScope(), uld.MoveToOuterDisposeScope());
    }
}
