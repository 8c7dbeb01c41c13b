using Distill.Losses.Kernels;
using Microsoft.Extensions.Logging;
using static TorchSharp.torch;

namespace Distill.Losses;

/// <summary>
/// The fused chunked variant of a same-vocabulary objective (<c>&lt;name&gt;_chunked</c>): reads the student's last
/// hidden states and lm_head instead of its logits and runs <see cref="FusedLinearDivergence"/>, so the full
/// [B·T, V] student logits (and, with a local teacher giving hidden states, the teacher's) never exist. Same value and
/// gradients as the plain objective.
/// </summary>
/// <remarks>
/// <c>atkd_chunked</c> runs two passes (teacher statistics for the batch-median split, then loss and gradients). An adapter
/// on the lm_head (<see cref="Distill.Models.Projection.Adapter"/>, e.g. LoRA) is applied chunk by chunk and trained.
/// </remarks>
internal sealed class ChunkedObjective : IDistillationObjective
{
    /// <summary>The objectives that have a chunked variant.</summary>
    internal static readonly string[] SupportedBaseNames =
    [
        ObjectiveNames.ForwardKl, ObjectiveNames.ReverseKl, ObjectiveNames.JsDivergence, ObjectiveNames.SkewedForwardKl,
        ObjectiveNames.SkewedReverseKl, ObjectiveNames.AdaptiveKl, ObjectiveNames.AtkdForward, ObjectiveNames.AtkdReverse,
        ObjectiveNames.AtkdJsd, ObjectiveNames.AtkdTvd, ObjectiveNames.AtkdDkd, ObjectiveNames.GkdJsd, ObjectiveNames.Sft,
        ObjectiveNames.SeqKd, ObjectiveNames.Atkd,
    ];

    private readonly string baseName;
    private readonly LossesOptions options;
    private readonly ILogger logger;
    private readonly ChunkDivergence divergence;

    internal ChunkedObjective(string baseName, LossesOptions options, ILogger logger)
    {
        if (!SupportedBaseNames.Contains(baseName))
        {
            throw new ArgumentException($"'{baseName}' has no chunked variant; supported: {string.Join(", ", SupportedBaseNames)}.", nameof(baseName));
        }

        this.baseName = baseName;
        this.options = options;
        this.logger = logger;
        Name = baseName + ObjectiveNames.ChunkedSuffix;
        divergence = Create(baseName, options);
        var teacherFree = !divergence.NeedsTeacher;
        Requirements = new ObjectiveRequirements
        {
            NeedsTeacher = !teacherFree,
            NeedsTeacherLogits = !teacherFree && !options.ChunkedTeacherFromHiddenStates,
            NeedsTeacherHiddenStates = !teacherFree && options.ChunkedTeacherFromHiddenStates,
            NeedsStudentLogits = false,
            NeedsStudentHiddenStates = true,
            RequiresSameVocabulary = !teacherFree,
        };
    }

    public string Name { get; }

    public ObjectiveRequirements Requirements { get; }

    public nn.Module? Module => null;

    /// <summary>The chunk loss of a plain objective name (the same arithmetic as the plain objective, on [c, V] rows).</summary>
    internal static ChunkDivergence Create(string baseName, LossesOptions options)
    {
        var d = options.Divergence;
        var a = options.Atkd;
        var g = options.Gkd;
        switch (baseName)
        {
            case ObjectiveNames.ForwardKl:
                return new ForwardKlChunkDivergence(d.KdRate, d.Temperature);
            case ObjectiveNames.ReverseKl or ObjectiveNames.JsDivergence or ObjectiveNames.SkewedForwardKl or ObjectiveNames.SkewedReverseKl or ObjectiveNames.AdaptiveKl:
                var perToken = DivergenceKdObjective.PerToken(baseName);
                return new FunctionChunkDivergence((s, t, y) =>
                {
                    var mask = TokenReduction.ValidMask(y);
                    var ce = TokenReduction.MaskedSum(CrossEntropy.PerToken(s, y), mask);
                    var kd = TokenReduction.MaskedSum(perToken(s, t!, d), mask);
                    return (1 - d.KdRate) * ce + d.KdRate * kd;
                });
            case ObjectiveNames.Atkd:
                return new AtkdChunkDivergence(a.Alpha, a.StudentTemperature, a.TeacherTemperature, a.Setting == AtkdSetting.Reverse, a.OfficialCompatibility);
            case ObjectiveNames.AtkdForward:
                return Atkd(a, (s, t, y) => ForwardKl.PerToken(s, t));
            case ObjectiveNames.AtkdReverse:
                return Atkd(a, (s, t, y) => ReverseKl.PerToken(s, t));
            case ObjectiveNames.AtkdJsd when a.OfficialCompatibility:
                return Atkd(a, (s, t, y) => a.JsdForwardRatio * ForwardKl.PerToken(s, t) + (1 - a.JsdForwardRatio) * ReverseKl.PerToken(s, t));
            case ObjectiveNames.AtkdJsd:
                return Atkd(a, (s, t, y) => GeneralizedJsd.PerToken(s, t, beta: 0.5));
            case ObjectiveNames.AtkdTvd:
                return Atkd(a, (s, t, y) => TotalVariation.PerToken(s, t), scoreIgnored: a.OfficialCompatibility);
            case ObjectiveNames.AtkdDkd:
                return Atkd(a, (s, t, y) =>
                {
                    var (tckd, nckd) = Dkd.PerToken(s, t, y);
                    return a.Alpha * tckd + a.Beta * nckd;
                });
            case ObjectiveNames.GkdJsd:
                return new FunctionChunkDivergence((s, t, y) =>
                    TokenReduction.MaskedSum(GeneralizedJsd.PerToken(s, t!, g.Beta, g.Temperature), TokenReduction.ValidMask(y)));
            default: // sft, seqkd
                return new FunctionChunkDivergence(
                    (s, t, y) => TokenReduction.MaskedSum(CrossEntropy.PerToken(s, y), TokenReduction.ValidMask(y)), needsTeacher: false);
        }
    }

    public ObjectiveResult Compute(ObjectiveContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (baseName == ObjectiveNames.AtkdDkd && options.Atkd.OfficialCompatibility)
        {
            throw new NotSupportedException("atkd_dkd_chunked with Atkd.OfficialCompatibility = true: the official dkd call raises TypeError (see atkd_dkd).");
        }

        var hidden = context.Student.HiddenStates
            ?? throw new InvalidOperationException($"Objective '{Name}' needs the student's last hidden states, but CausalLMOutput.HiddenStates is null (run the student with ReturnHiddenStates = true).");
        var labels = context.Batch.Labels;
        if (hidden.dim() != 3 || labels.dim() != 2 || hidden.shape[0] != labels.shape[0] || hidden.shape[1] != labels.shape[1])
        {
            throw new ArgumentException($"Objective '{Name}': student hidden states [{string.Join(", ", hidden.shape)}] must be [B, T, H] matching labels [{string.Join(", ", labels.shape)}].");
        }

        long b = hidden.shape[0], len = hidden.shape[1];
        var weight = context.StudentModel.LmHeadWeight;
        var bias = context.StudentModel.LmHeadBias;
        if (weight.shape[1] != hidden.shape[2])
        {
            throw new ArgumentException($"Objective '{Name}': student lm_head weight [{string.Join(", ", weight.shape)}] does not match hidden size {hidden.shape[2]}.");
        }

        using var scope = NewDisposeScope();
        var teacher = divergence.NeedsTeacher ? Teacher(context, b * len, ref weight, ref bias) : TeacherSource.None;
        Action<Tensor, long>? check = options.CheckFinite ? (s, start) => CheckChunk(s, start, len) : null;
        var flatLabels = labels.reshape(-1);
        var chunkSize = ChunkSizeRule.Resolve(options.ChunkSize, weight.shape[0], weight.shape[1]);
        var adapter = context.StudentModel is Distill.Models.CausalLM model ? LmHeadAdapter.Of(model.LmHead) : null;
        var loss = FusedLinearDivergence.Apply(hidden.reshape(b * len, -1), weight, bias, teacher, flatLabels, divergence, chunkSize, check, adapter);
        var mask = TokenReduction.ValidMask(labels);
        var count = baseName == ObjectiveNames.AtkdTvd && options.Atkd.OfficialCompatibility
            ? mask.logical_not().sum().item<long>()
            : mask.sum().item<long>();
        if (baseName == ObjectiveNames.AtkdTvd && options.Atkd.OfficialCompatibility && count == 0)
        {
            loss = loss / 0.0; // official: mean of an empty selection is NaN
        }

        return DivergenceKdObjective.Move(ObjectiveResults.Create(loss, count, ("loss", loss)));
    }

    private static FunctionChunkDivergence Atkd(AtkdOptions a, Func<Tensor, Tensor, Tensor, Tensor> perToken, bool scoreIgnored = false) =>
        new((s, t, y) =>
        {
            var mask = TokenReduction.ValidMask(y);
            if (scoreIgnored)
            {
                mask = mask.logical_not();
            }

            return TokenReduction.MaskedSum(perToken(LossMath.Scale(s, a.StudentTemperature), LossMath.Scale(t!, a.TeacherTemperature), y), mask);
        });

    private TeacherSource Teacher(ObjectiveContext context, long rows, ref Tensor weight, ref Tensor? bias)
    {
        var t = context.Teacher ?? throw new InvalidOperationException($"Objective '{Name}' needs a teacher, but ObjectiveContext.Teacher is null.");
        long vs = weight.shape[0];
        TeacherSource source;
        long vt;
        if (t.Logits is not null)
        {
            var teacherLogits = t.Logits;
            if (teacherLogits.requires_grad)
            {
                throw new InvalidOperationException($"Objective '{Name}': teacher logits require grad. Compute them under torch.no_grad() or detach them.");
            }

            if (teacherLogits.dim() != 3 || teacherLogits.shape[0] * teacherLogits.shape[1] != rows)
            {
                throw new ArgumentException($"Objective '{Name}': teacher logits [{string.Join(", ", teacherLogits.shape)}] must be [B, T, V] with the student's B and T.");
            }

            if (options.CheckFinite)
            {
                LogitsGuard.CheckFinite(teacherLogits, "teacher logits", Name);
            }

            vt = teacherLogits.shape[2];
            source = new TeacherSource(teacherLogits.reshape(rows, vt));
        }
        else if (t.HiddenStates is not null)
        {
            var model = context.TeacherModel
                ?? throw new InvalidOperationException($"Objective '{Name}': the teacher gave hidden states but no logits, and ObjectiveContext.TeacherModel is null (its lm_head is needed).");
            if (t.HiddenStates.requires_grad)
            {
                throw new InvalidOperationException($"Objective '{Name}': teacher hidden states require grad. Compute them under torch.no_grad() or detach them.");
            }

            vt = model.LmHeadWeight.shape[0];
            source = new TeacherSource(null, t.HiddenStates.reshape(rows, -1), model.LmHeadWeight.detach(), model.LmHeadBias?.detach());
        }
        else
        {
            throw new InvalidOperationException($"Objective '{Name}' needs teacher logits or teacher hidden states; TeacherOutput has neither.");
        }

        if (vs != vt)
        {
            if (!options.SliceToSharedVocabulary)
            {
                throw new ArgumentException(
                    $"Objective '{Name}': vocabulary mismatch, student lm_head has V = {vs} rows but the teacher has V = {vt}. " +
                    $"Set {nameof(LossesOptions)}.{nameof(LossesOptions.SliceToSharedVocabulary)} = true to use the first {Math.Min(vs, vt)} entries when both share a tokenizer.");
            }

            var shared = Math.Min(vs, vt);
            Log.VocabularySliced(logger, Name, vs, vt, shared);
            weight = weight.narrow(0, 0, shared);
            bias = bias?.narrow(0, 0, shared);
        }

        return source;
    }

    private void CheckChunk(Tensor studentLogits, long start, long sequenceLength)
    {
        var bad = studentLogits.isnan().logical_or(studentLogits.isposinf());
        if (!bad.any().item<bool>())
        {
            return;
        }

        var first = bad.nonzero()[0].data<long>().ToArray();
        var row = start + first[0];
        throw new ArgumentException($"Objective '{Name}': student logits contain NaN or +inf at (batch {row / sequenceLength}, token {row % sequenceLength}, vocab {first[1]}).");
    }
}
