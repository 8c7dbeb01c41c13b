using static TorchSharp.torch;

namespace Distill.Losses.DualSpace;

/// <summary>
/// The terms of a dual-space loss for one micro-batch (float32 scalars, sums over the scored positions).
/// </summary>
/// <param name="Loss">(1 − α)·CE + α·(t2s_ce + t2s_kd + s2t_kd), with gradient.</param>
/// <param name="CrossEntropy">The student's CE sum.</param>
/// <param name="TeacherToStudentCrossEntropy">t2s_ce: CE of the projected teacher logits (trains the t2s projector).</param>
/// <param name="TeacherToStudentKd">t2s_kd: the distance in the student's space.</param>
/// <param name="StudentToTeacherKd">s2t_kd: forward KL in the teacher's space.</param>
/// <param name="TeacherToStudentCorrect">How many scored positions the projected teacher predicts correctly.</param>
internal sealed record DualSpaceTerms(Tensor Loss, Tensor CrossEntropy, Tensor TeacherToStudentCrossEntropy, Tensor TeacherToStudentKd, Tensor StudentToTeacherKd, Tensor TeacherToStudentCorrect)
{
    /// <summary>Moves every tensor to the enclosing dispose scope.</summary>
    internal DualSpaceTerms MoveToOuterDisposeScope()
    {
        Loss.MoveToOuterDisposeScope();
        CrossEntropy.MoveToOuterDisposeScope();
        TeacherToStudentCrossEntropy.MoveToOuterDisposeScope();
        TeacherToStudentKd.MoveToOuterDisposeScope();
        StudentToTeacherKd.MoveToOuterDisposeScope();
        TeacherToStudentCorrect.MoveToOuterDisposeScope();
        return this;
    }

    /// <summary>The metrics dictionary (detached).</summary>
    internal Dictionary<string, Tensor> Metrics() => new(StringComparer.Ordinal)
    {
        ["ce"] = DskdMath.Metric(CrossEntropy),
        ["t2s_ce"] = DskdMath.Metric(TeacherToStudentCrossEntropy),
        ["t2s_kd"] = DskdMath.Metric(TeacherToStudentKd),
        ["s2t_kd"] = DskdMath.Metric(StudentToTeacherKd),
        ["t2s_acc"] = DskdMath.Metric(TeacherToStudentCorrect),
    };
}

/// <summary>
/// Dual-space knowledge distillation with a shared vocabulary (Zhang et al., EMNLP 2024, arXiv:2406.17328), as
/// <c>code/criterions/dual_space_kd.py</c> of songmzhang/DSKD computes it.
/// </summary>
/// <remarks>
/// <list type="number">
/// <item>Student space: z_t2s = t2s(h_t)·E_sᵀ with the student lm_head weight E_s detached (no bias); t2s_ce = CE(z_t2s, y) at T = 1;
/// t2s_kd = Σ_{y ≠ −100} D(z_s, stopgrad(z_t2s)) at T with the chosen distance D.</item>
/// <item>Teacher space: z_s2t = teacher lm_head(s2t(h_s)) (frozen, bias if any); s2t_kd = Σ_{y' ≠ −100} KL(softmax(z_t/T) ‖ softmax(z_s2t/T)),
/// always forward KL in DSKD v1.</item>
/// <item>L = (1 − α)·CE(z_s, y) + α·(t2s_kd + t2s_ce + s2t_kd), all sums; normalised by the student's token count.</item>
/// </list>
/// Gradients: student ← CE, t2s_kd (through z_s) and s2t_kd (through h_s); t2s ← t2s_ce only; s2t ← s2t_kd only.
/// </remarks>
public sealed class DskdObjective : IModelAwareObjective
{
    /// <summary>The registered name.</summary>
    public const string RegisteredName = "dskd";

    private readonly DskdOptions options;
    private readonly DskdDistance distance;
    private DualSpaceProjectors? projectors;

    /// <summary>Creates the objective; call <see cref="Initialize"/> (the trainer does) or pass <paramref name="projectors"/>.</summary>
    /// <param name="options">Options; validated here.</param>
    /// <param name="projectors">Existing projectors (e.g. loaded from a checkpoint), or <see langword="null"/> to create them in <see cref="Initialize"/>.</param>
    /// <exception cref="ArgumentException">Invalid options (the message lists every rule broken).</exception>
    public DskdObjective(DskdOptions? options = null, DualSpaceProjectors? projectors = null)
    {
        this.options = options ?? new DskdOptions();
        OptionChecks.ThrowIfInvalid(new DskdOptionsValidator(), this.options, nameof(options));
        distance = DskdDistances.Resolve(this.options.Distance, this.options.SkewLambda, this.options.AdaptiveKlAlpha);
        this.projectors = projectors;
    }

    /// <inheritdoc />
    public string Name => RegisteredName;

    /// <inheritdoc />
    public ObjectiveRequirements Requirements => Needs;

    /// <summary>Gets what <c>dskd</c> needs: logits and last hidden states of both models, one vocabulary.</summary>
    internal static ObjectiveRequirements Needs { get; } = new()
    {
        NeedsTeacherLogits = true,
        NeedsTeacherHiddenStates = true,
        NeedsStudentHiddenStates = true,
        RequiresSameVocabulary = true,
    };

    /// <inheritdoc />
    public void Validate(ObjectiveSetup setup) => ObjectiveChecks.Validate(Name, Requirements, setup, sliceToSharedVocabulary: false, chunked: false);

    /// <inheritdoc />
    /// <exception cref="InvalidOperationException">The projectors do not exist yet (call <see cref="Initialize"/> first).</exception>
    public TorchSharp.torch.nn.Module Module => Projectors;

    /// <summary>Gets the projectors.</summary>
    /// <exception cref="InvalidOperationException">Not initialised yet.</exception>
    public DualSpaceProjectors Projectors => projectors ?? throw new InvalidOperationException($"Objective '{Name}' has no projectors yet: call Initialize(student, teacher) before training (they are sized from the hidden sizes).");

    /// <inheritdoc />
    public bool IsInitialized => projectors is not null;

    /// <inheritdoc />
    public void Initialize(ICausalLM student, ICausalLM teacher)
    {
        ArgumentNullException.ThrowIfNull(student);
        ArgumentNullException.ThrowIfNull(teacher);
        if (ObjectiveChecks.SharedVocabulary(Name, student.Config.VocabSize, teacher.Config.VocabSize, slice: false, "student", "teacher", out var error) is null)
        {
            throw new ArgumentException(error, nameof(teacher));
        }

        projectors = DualSpaceInit.Create(projectors, student, teacher, withQuery: false, Name);
    }

    /// <inheritdoc />
    public ObjectiveResult Compute(ObjectiveContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var zs = ContextChecks.StudentLogits(context, Name);
        var hs = ContextChecks.StudentHidden(context, Name);
        var zt = ContextChecks.TeacherLogits(context, Name);
        var ht = ContextChecks.TeacherHidden(context, Name);
        var teacher = ContextChecks.TeacherModel(context, Name);
        if (ObjectiveChecks.SharedVocabulary(Name, zs.shape[^1], zt.shape[^1], slice: false, "student logits", "teacher logits", out var error) is null)
        {
            throw new InvalidOperationException(error);
        }

        var labels = context.Batch.Labels;
        var teacherLabels = context.Batch.TeacherLabels ?? labels;
        ContextChecks.SameSize(zs, "student logits", ht, "teacher hidden states", 1, Name);
        var terms = Compute(zs, hs, zt, ht, labels, teacherLabels, ContextChecks.StudentModel(context, Name).LmHeadWeight, teacher.LmHeadWeight, teacher.LmHeadBias, Projectors, distance, options.Alpha, options.Temperature);
        return ObjectiveResult.FromTokens(terms.Loss, labels, terms.Metrics());
    }

    /// <summary>The DSKD loss (pure function over tensors).</summary>
    /// <param name="studentLogits">z_s, [B, L, V].</param>
    /// <param name="studentHidden">h_s, [B, L, d_s].</param>
    /// <param name="teacherLogits">z_t, [B, L, V] (no grad).</param>
    /// <param name="teacherHidden">h_t, [B, L, d_t] (no grad).</param>
    /// <param name="labels">y, [B, L], aligned with logits, −100 ignored.</param>
    /// <param name="teacherLabels">y', [B, L] (the same as <paramref name="labels"/> for one tokenizer).</param>
    /// <param name="studentLmHead">E_s, [V, d_s] (detached here).</param>
    /// <param name="teacherLmHead">E_t, [V, d_t] (detached here).</param>
    /// <param name="teacherLmHeadBias">The teacher lm_head bias [V] or <see langword="null"/>.</param>
    /// <param name="projectors">t2s and s2t.</param>
    /// <param name="distance">The student-space distance D.</param>
    /// <param name="alpha">α.</param>
    /// <param name="temperature">T.</param>
    /// <returns>The loss and its terms.</returns>
    internal static DualSpaceTerms Compute(
        Tensor studentLogits, Tensor studentHidden, Tensor teacherLogits, Tensor teacherHidden, Tensor labels, Tensor teacherLabels,
        Tensor studentLmHead, Tensor teacherLmHead, Tensor? teacherLmHeadBias, DualSpaceProjectors projectors, DskdDistance distance, double alpha, double temperature)
    {
        using var scope = NewDisposeScope();
        var mask = TokenReduction.ValidMask(labels);
        var teacherMask = TokenReduction.ValidMask(teacherLabels);
        var ce = DskdMath.CrossEntropySum(studentLogits, labels);

        // Student space: ĥ = t2s(h_t) [B, L, d_s]; z_t2s = ĥ·E_sᵀ [B, L, V] with E_s detached.
        var t2sHidden = DualSpaceProjectors.Apply(projectors.TeacherToStudent, teacherHidden).to(studentHidden.dtype);
        var t2sLogits = t2sHidden.matmul(studentLmHead.detach().to(t2sHidden.dtype).t());
        var t2sCe = DskdMath.CrossEntropySum(t2sLogits, labels);
        var t2sKd = distance(studentLogits, t2sLogits.detach(), mask, temperature);

        // Teacher space: h̃ = s2t(h_s) [B, L, d_t]; z_s2t = teacher lm_head(h̃) [B, L, V] (frozen weights; grad flows to s2t and h_s).
        var s2tHidden = DualSpaceProjectors.Apply(projectors.StudentToTeacher, studentHidden).to(teacherHidden.dtype);
        var s2tLogits = nn.functional.linear(s2tHidden, teacherLmHead.detach().to(s2tHidden.dtype), teacherLmHeadBias?.detach().to(s2tHidden.dtype));
        var s2tKd = DskdMath.ForwardKlSum(s2tLogits, teacherLogits, teacherMask, temperature); // always forward KL in v1

        var loss = ce.Mul(1.0 - alpha).Add(t2sKd.Add(t2sCe).Add(s2tKd).Mul(alpha));
        var correct = t2sLogits.argmax(-1).eq(labels).logical_and(mask).sum().to(ScalarType.Float32);
        return new DualSpaceTerms(loss, ce, t2sCe, t2sKd, s2tKd, correct).MoveToOuterDisposeScope();
    }
}
