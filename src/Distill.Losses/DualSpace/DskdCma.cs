using static TorchSharp.torch;

namespace Distill.Losses.DualSpace;

/// <summary>
/// Dual-space KD with cross-model attention for different vocabularies (Zhang et al., EMNLP 2024), as
/// <c>code/criterions/dual_space_kd_with_cross_model_attention.py</c> of songmzhang/DSKD computes it.
/// </summary>
/// <remarks>
/// With m_s = (y ≠ −100), m_t = (y' ≠ −100), x̂ = x·m_s, ŷ = y·m_s (token id 0 at every unscored position; the INPUT ids are
/// masked with the LABEL mask) and embeddings e_s, e_t from the input embedding tables (detached):
/// <list type="number">
/// <item>Q = query([e_s(x̂); e_s(ŷ)]) [B, L_s, 2d_s → 2d_t]; K = [e_t(x̂'); e_t(ŷ')] / std(·), one global unbiased std over the whole
/// [B, L_t, 2d_t] tensor (padding rows included, so it depends on the padded length).</item>
/// <item>V_t = t2s(h_t/std(h_t) + e_t(ŷ')/std(e_t(ŷ'))) [B, L_t, d_s]; V_s = s2t(h_s) [B, L_s, d_t].</item>
/// <item>A = Q·Kᵀ/√(2·d_t) + (1 − m_s ⊗ m_t)·(−1e5).</item>
/// <item>z_t2s = (softmax_j(A)·V_t)·E_sᵀ; t2s_ce = CE(z_t2s, y); acc = [argmax z_t2s = y];
/// t2s_kd = Σ_{m_s ∧ acc} D(z_s, stopgrad(z_t2s)/τ) at T — only positions the projected teacher already predicts correctly.</item>
/// <item>z_s2t = (softmax_i(Aᵀ)·V_s)·E_tᵀ (teacher lm_head weight, detached, no bias); s2t_kd = Σ_{m_t} KL(softmax(z_t/T) ‖ softmax(z_s2t/T)).</item>
/// <item>L = (1 − α)·CE(z_s, y) + α·(t2s_ce + t2s_kd + s2t_kd) (t2s_ce alone with <see cref="DskdCmaOptions.ProjectorsOnly"/>).</item>
/// </list>
/// Gradients: query ← t2s_ce and s2t_kd (through A); t2s ← t2s_ce; s2t ← s2t_kd; student ← CE, t2s_kd, s2t_kd.
/// The batch must carry the teacher's own tokenisation (<see cref="DistillationBatch.TeacherInputIds"/>, <see cref="DistillationBatch.TeacherLabels"/>).
/// </remarks>
public sealed class DskdCmaObjective : IModelAwareObjective
{
    /// <summary>The registered name.</summary>
    public const string RegisteredName = "dskd_cma";

    private readonly DskdCmaOptions options;
    private readonly DskdDistance distance;
    private DualSpaceProjectors? projectors;

    /// <summary>Creates the objective; call <see cref="Initialize"/> (the trainer does) or pass <paramref name="projectors"/>.</summary>
    /// <param name="options">Options; validated here.</param>
    /// <param name="projectors">Existing projectors with a query projector, or <see langword="null"/>.</param>
    /// <exception cref="ArgumentException">Invalid options, or projectors without a query projector.</exception>
    public DskdCmaObjective(DskdCmaOptions? options = null, DualSpaceProjectors? projectors = null)
    {
        this.options = options ?? new DskdCmaOptions();
        OptionChecks.ThrowIfInvalid(new DskdCmaOptionsValidator(), this.options, nameof(options));
        if (projectors is { Query: null })
        {
            throw new ArgumentException("DSKD-CMA needs projectors created with a query projector (withQuery: true).", nameof(projectors));
        }

        distance = DskdDistances.Resolve(this.options.Distance, this.options.SkewLambda, this.options.AdaptiveKlAlpha);
        this.projectors = projectors;
    }

    /// <inheritdoc />
    public string Name => RegisteredName;

    /// <inheritdoc />
    public ObjectiveRequirements Requirements => Needs;

    /// <summary>Gets what <c>dskd_cma</c> needs: logits and last hidden states of both models, the teacher's own tokens.</summary>
    internal static ObjectiveRequirements Needs { get; } = new()
    {
        NeedsTeacherLogits = true,
        NeedsTeacherHiddenStates = true,
        NeedsStudentHiddenStates = true,
        RequiresSameVocabulary = false,
        RequiresTeacherTokens = true,
    };

    /// <inheritdoc />
    public void Validate(ObjectiveSetup setup) => ObjectiveChecks.Validate(Name, Requirements, setup, sliceToSharedVocabulary: false, chunked: false);

    /// <inheritdoc />
    /// <exception cref="InvalidOperationException">The projectors do not exist yet (call <see cref="Initialize"/> first).</exception>
    public nn.Module Module => Projectors;

    /// <summary>Gets the projectors (t2s, s2t, query).</summary>
    /// <exception cref="InvalidOperationException">Not initialised yet.</exception>
    public DualSpaceProjectors Projectors => projectors ?? throw new InvalidOperationException($"Objective '{Name}' has no projectors yet: call Initialize(student, teacher) before training (they are sized from the hidden sizes).");

    /// <inheritdoc />
    public bool IsInitialized => projectors is not null;

    /// <inheritdoc />
    public void Initialize(ICausalLM student, ICausalLM teacher)
    {
        ArgumentNullException.ThrowIfNull(student);
        ArgumentNullException.ThrowIfNull(teacher);
        projectors = DualSpaceInit.Create(projectors, student, teacher, withQuery: true, Name);
    }

    /// <inheritdoc />
    public ObjectiveResult Compute(ObjectiveContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var (teacherIds, teacherLabels) = ContextChecks.TeacherTokens(context, Name);
        var zs = ContextChecks.StudentLogits(context, Name);
        var hs = ContextChecks.StudentHidden(context, Name);
        var zt = ContextChecks.TeacherLogits(context, Name);
        var ht = ContextChecks.TeacherHidden(context, Name);
        var teacher = ContextChecks.TeacherModel(context, Name);
        var student = ContextChecks.StudentModel(context, Name);
        var batch = context.Batch;
        ContextChecks.SameSize(teacherIds, "teacher input ids", ht, "teacher hidden states", 1, Name);
        ContextChecks.SameSize(batch.InputIds, "student input ids", hs, "student hidden states", 1, Name);
        var terms = Compute(
            zs, hs, zt, ht, batch.InputIds, batch.Labels, teacherIds, teacherLabels,
            student.EmbeddingWeight, teacher.EmbeddingWeight, student.LmHeadWeight, teacher.LmHeadWeight,
            Projectors, distance, options);
        return ObjectiveResult.FromTokens(terms.Loss, batch.Labels, terms.Metrics());
    }

    /// <summary>The DSKD-CMA loss (pure function over tensors).</summary>
    /// <param name="studentLogits">z_s, [B, L_s, V_s].</param>
    /// <param name="studentHidden">h_s, [B, L_s, d_s].</param>
    /// <param name="teacherLogits">z_t, [B, L_t, V_t].</param>
    /// <param name="teacherHidden">h_t, [B, L_t, d_t].</param>
    /// <param name="inputIds">x, [B, L_s].</param>
    /// <param name="labels">y, [B, L_s].</param>
    /// <param name="teacherIds">x', [B, L_t].</param>
    /// <param name="teacherLabels">y', [B, L_t].</param>
    /// <param name="studentEmbedding">Student input embedding table, [V_s, d_s].</param>
    /// <param name="teacherEmbedding">Teacher input embedding table, [V_t, d_t].</param>
    /// <param name="studentLmHead">E_s, [V_s, d_s].</param>
    /// <param name="teacherLmHead">E_t, [V_t, d_t].</param>
    /// <param name="projectors">t2s, s2t and query.</param>
    /// <param name="distance">The student-space distance D.</param>
    /// <param name="options">α, T, τ, projector-only.</param>
    /// <returns>The loss and its terms.</returns>
    internal static DualSpaceTerms Compute(
        Tensor studentLogits, Tensor studentHidden, Tensor teacherLogits, Tensor teacherHidden,
        Tensor inputIds, Tensor labels, Tensor teacherIds, Tensor teacherLabels,
        Tensor studentEmbedding, Tensor teacherEmbedding, Tensor studentLmHead, Tensor teacherLmHead,
        DualSpaceProjectors projectors, DskdDistance distance, DskdCmaOptions options)
    {
        using var scope = NewDisposeScope();
        var query = projectors.Query ?? throw new ArgumentException("DSKD-CMA needs a query projector.", nameof(projectors));
        var ms = TokenReduction.ValidMask(labels);           // [B, L_s]
        var mt = TokenReduction.ValidMask(teacherLabels);    // [B, L_t]
        var ce = DskdMath.CrossEntropySum(studentLogits, labels);

        // Index tokens: id 0 wherever the label is −100 (inputs are masked with the label mask, as the official code does).
        var sIn = DskdMath.Embed(studentEmbedding.detach(), where(ms, inputIds, zeros_like(inputIds)));        // [B, L_s, d_s]
        var sTg = DskdMath.Embed(studentEmbedding.detach(), where(ms, labels, zeros_like(labels)));            // [B, L_s, d_s]
        var tIn = DskdMath.Embed(teacherEmbedding.detach(), where(mt, teacherIds, zeros_like(teacherIds)));    // [B, L_t, d_t]
        var tTg = DskdMath.Embed(teacherEmbedding.detach(), where(mt, teacherLabels, zeros_like(teacherLabels))); // [B, L_t, d_t]
        var sIndex = cat([sIn, sTg], -1);                     // [B, L_s, 2d_s]
        var tIndex = cat([tIn, tTg], -1);                     // [B, L_t, 2d_t]

        // One scalar unbiased std per tensor, over every position (padding rows included).
        var key = (tIndex / tIndex.std(unbiased: true)).to(ScalarType.Float32);
        var normTarget = tTg / tTg.std(unbiased: true);
        var normHidden = teacherHidden / teacherHidden.std(unbiased: true);

        var q = DualSpaceProjectors.Apply(query, sIndex).to(ScalarType.Float32);                                    // [B, L_s, 2d_t]
        var vs = DualSpaceProjectors.Apply(projectors.StudentToTeacher, studentHidden).to(ScalarType.Float32);       // [B, L_s, d_t]
        var vt = DualSpaceProjectors.Apply(projectors.TeacherToStudent, normHidden.Add(normTarget)).to(ScalarType.Float32); // [B, L_t, d_s]

        var dt = teacherHidden.shape[^1];
        var align = q.matmul(key.transpose(-1, -2)).Div(Math.Sqrt(2.0 * dt));                                          // [B, L_s, L_t]
        var pairMask = ms.to(ScalarType.Float32).unsqueeze(-1) * mt.to(ScalarType.Float32).unsqueeze(1);
        align = align.Add(pairMask.RSub(1.0).Mul(DskdMath.NegativeFill));

        // Student space.
        var t2sHidden = align.softmax(-1).matmul(vt).to(studentHidden.dtype);                                       // [B, L_s, d_s]
        var t2sLogits = t2sHidden.matmul(studentLmHead.detach().to(t2sHidden.dtype).t());                           // [B, L_s, V_s]
        var t2sCe = DskdMath.CrossEntropySum(t2sLogits, labels);
        var acc = t2sLogits.argmax(-1).eq(labels);
        var correct = acc.logical_and(ms).sum().to(ScalarType.Float32);

        Tensor t2sKd, s2tKd, kd;
        if (options.ProjectorsOnly)
        {
            t2sKd = zeros(Array.Empty<long>(), dtype: ScalarType.Float32, device: studentLogits.device);
            s2tKd = zeros(Array.Empty<long>(), dtype: ScalarType.Float32, device: studentLogits.device);
            kd = t2sCe;
        }
        else
        {
            // use_tea_temp=True: teacher logits / T / τ, i.e. the distance at T on z_t2s / τ.
            var teacherSide = options.TeacherTemperature == 1.0 ? t2sLogits.detach() : t2sLogits.detach().Div(options.TeacherTemperature);
            t2sKd = distance(studentLogits, teacherSide, ms.logical_and(acc), options.Temperature);

            // Teacher space: attention over student positions.
            var s2tHidden = align.transpose(-1, -2).softmax(-1).matmul(vs).to(studentHidden.dtype);                 // [B, L_t, d_t]
            var s2tLogits = s2tHidden.matmul(teacherLmHead.detach().to(s2tHidden.dtype).t());                       // [B, L_t, V_t]
            s2tKd = DskdMath.ForwardKlSum(s2tLogits, teacherLogits, mt, options.Temperature);
            kd = t2sCe.Add(t2sKd).Add(s2tKd);
        }

        var loss = ce.Mul(1.0 - options.Alpha).Add(kd.Mul(options.Alpha));
        return new DualSpaceTerms(loss, ce, t2sCe, t2sKd, s2tKd, correct).MoveToOuterDisposeScope();
    }
}
