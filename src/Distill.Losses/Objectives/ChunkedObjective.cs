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
/// Token-level objectives sum their terms per chunk. Batch-level objectives with a chunk loss are served too: <c>atkd</c>
/// (<see cref="AtkdChunkDivergence"/>, two passes over the chunks; its result is a per-micro-batch mean, as the plain
/// objective's) and the sparse top-k objectives (<see cref="SparseChunkDivergence"/>: the teacher is read as top-k ids,
/// log-probs and log tail mass [B, T, K], so no [tokens × V] teacher tensor exists). An adapter on the lm_head
/// (<see cref="Distill.Models.Projection.Adapter"/>, e.g. LoRA) is applied chunk by chunk and trained.
/// </remarks>
internal sealed class ChunkedObjective : IDistillationObjective
{
    private readonly ObjectiveDeclaration declaration;
    private readonly LossesOptions options;
    private readonly ILogger logger;
    private readonly ChunkDivergence divergence;
    private readonly bool scoreIgnored;
    private readonly bool sparseTeacher;
    private bool sliceLogged;

    internal ChunkedObjective(ObjectiveDeclaration declaration, LossesOptions options, ILogger logger)
    {
        if (!declaration.ServesChunked)
        {
            throw new ArgumentException($"'{declaration.Name}' has no chunked variant; supported: {string.Join(", ", SupportedBaseNames)}.", nameof(declaration));
        }

        this.declaration = declaration;
        this.options = options;
        this.logger = logger;
        Name = declaration.Name + ObjectiveNames.ChunkedSuffix;
        divergence = declaration.ChunkLoss(options);
        scoreIgnored = declaration.ScoresIgnoredPositions?.Invoke(options) ?? false;
        var teacherFree = !divergence.NeedsTeacher;
        sparseTeacher = !teacherFree && !divergence.NeedsTeacherLogits;
        Requirements = new ObjectiveRequirements
        {
            NeedsTeacher = !teacherFree,
            NeedsTeacherLogits = !teacherFree && !sparseTeacher && !options.ChunkedTeacherFromHiddenStates,
            NeedsTeacherHiddenStates = !teacherFree && !sparseTeacher && options.ChunkedTeacherFromHiddenStates,
            AcceptsSparseTopK = sparseTeacher,
            NeedsStudentLogits = false,
            NeedsStudentHiddenStates = true,
            RequiresSameVocabulary = !teacherFree,
        };
    }

    /// <summary>Gets the base names that have a chunked variant (the built-in declarations that serve one).</summary>
    internal static IReadOnlyList<string> SupportedBaseNames =>
        [.. DistillObjectives.BuiltIn.Where(d => d.ServesChunked).Select(d => d.Name)];

    public string Name { get; }

    public ObjectiveRequirements Requirements { get; }

    public nn.Module? Module => null;

    public void Validate(ObjectiveSetup setup)
    {
        if (sparseTeacher)
        {
            SparseKdObjective.ValidateSparse(Name, setup);
            return;
        }

        ObjectiveChecks.Validate(Name, Requirements, setup, options.SliceToSharedVocabulary, chunked: true);
    }

    public ObjectiveResult Compute(ObjectiveContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        declaration.Check?.Invoke(options);
        var hidden = context.Student.HiddenStates
            ?? throw new InvalidOperationException($"Objective '{Name}' needs the student's last hidden states, but CausalLMOutput.HiddenStates is null (run the student with ReturnHiddenStates = true).");
        var labels = context.Batch.Labels;
        if (hidden.dim() != 3 || labels.dim() != 2 || hidden.shape[0] != labels.shape[0] || hidden.shape[1] != labels.shape[1])
        {
            throw new ArgumentException($"Objective '{Name}': student hidden states [{string.Join(", ", hidden.shape)}] must be [B, T, H] matching labels [{string.Join(", ", labels.shape)}].");
        }

        long b = hidden.shape[0], len = hidden.shape[1];
        var model = DualSpace.ContextChecks.StudentModel(context, Name);
        var weight = model.LmHeadWeight;
        var bias = model.LmHeadBias;
        if (weight.shape[1] != hidden.shape[2])
        {
            throw new ArgumentException($"Objective '{Name}': student lm_head weight [{string.Join(", ", weight.shape)}] does not match hidden size {hidden.shape[2]}.");
        }

        using var scope = NewDisposeScope();
        labels = declaration.Labels?.Invoke(options, labels) ?? labels;
        var teacher = !divergence.NeedsTeacher ? TeacherSource.None
            : sparseTeacher ? SparseTeacher(context, labels, weight.shape[0])
            : Teacher(context, b * len, ref weight, ref bias);
        Action<Tensor, long>? check = options.CheckFinite ? (s, start) => CheckChunk(s, start, len) : null;
        var flatLabels = labels.reshape(-1);
        var chunkSize = ChunkSizeRule.Resolve(options.ChunkSize, weight.shape[0], weight.shape[1]);
        var adapter = context.StudentModel is Distill.Models.CausalLM lm ? LmHeadAdapter.Of(lm.LmHead) : null;
        var loss = FusedLinearDivergence.Apply(hidden.reshape(b * len, -1), weight, bias, teacher, flatLabels, divergence, chunkSize, check, adapter, options.ChunkedBfloat16Matmuls);
        var count = TokenLevelObjective.ScoreMask(labels, scoreIgnored).sum();
        var normalizer = count.to(ScalarType.Float32);
        if (scoreIgnored)
        {
            loss = loss / normalizer.ne(TorchScalars.Constant(0)).to(ScalarType.Float32); // official: mean of an empty selection is NaN (0/0)
        }

        if (declaration.ChunkedNormalizer == ChunkedNormalization.MicroBatchMean)
        {
            // The kernel summed L·N (N scored tokens); L is the objective's loss, a per-micro-batch mean (0 when N = 0).
            loss = loss / normalizer.clamp_min(TorchScalars.Constant(1.0));
            normalizer = ones(Array.Empty<long>(), ScalarType.Float32, loss.device);
        }

        return ObjectiveResults.Create(loss, normalizer, count, new Dictionary<string, Tensor>(StringComparer.Ordinal) { ["loss"] = loss });
    }

    /// <summary>The sparse top-k teacher of <paramref name="context"/> as [B·T, K] rows, checked against the labels and V.</summary>
    private TeacherSource SparseTeacher(ObjectiveContext context, Tensor labels, long vocab)
    {
        var t = context.Teacher ?? throw new InvalidOperationException($"Objective '{Name}' needs a teacher, but ObjectiveContext.Teacher is null.");
        var ids = t.TopKIndices
            ?? throw new InvalidOperationException($"Objective '{Name}' needs sparse teacher targets, but TeacherOutput.TopKIndices is null (use a cached or remote top-k teacher).");
        var logProbs = t.TopKLogProbs
            ?? throw new InvalidOperationException($"Objective '{Name}' needs TeacherOutput.TopKLogProbs, which is null.");
        if (ids.dim() != 3 || ids.shape[0] != labels.shape[0] || ids.shape[1] != labels.shape[1] || !ids.shape.SequenceEqual(logProbs.shape))
        {
            throw new ArgumentException($"Objective '{Name}': top-k ids [{string.Join(", ", ids.shape)}] and log-probs [{string.Join(", ", logProbs.shape)}] must both be [B, T, K] with labels [{string.Join(", ", labels.shape)}].");
        }

        if (ids.dtype != ScalarType.Int64)
        {
            throw new ArgumentException($"Objective '{Name}': top-k ids must be int64, got {ids.dtype}.");
        }

        long rows = ids.shape[0] * ids.shape[1], k = ids.shape[2];
        if (k < 1 || k > vocab)
        {
            throw new ArgumentException($"Objective '{Name}': top-k width K = {k} must be between 1 and the student vocabulary V = {vocab}.");
        }

        var tail = t.TopKLogTailMass;
        if (options.Sparse.TailHandling == SparseTailHandling.TailBucket)
        {
            if (tail is null)
            {
                throw new ArgumentException($"Objective '{Name}': {nameof(SparseTailHandling)}.{nameof(SparseTailHandling.TailBucket)} needs the teacher's log tail mass (TeacherOutput.TopKLogTailMass), which is null; use {nameof(SparseTailHandling.Renormalize)} or a teacher that supplies it.");
            }

            if (!tail.shape.SequenceEqual(ids.shape[..2]))
            {
                throw new ArgumentException($"Objective '{Name}': log tail mass [{string.Join(", ", tail.shape)}] must be [B, T] = [{ids.shape[0]}, {ids.shape[1]}].");
            }
        }
        else
        {
            tail = null;
        }

        return TeacherSource.Sparse(ids.reshape(rows, k), logProbs.reshape(rows, k), tail?.reshape(rows));
    }

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

        var shared = ObjectiveChecks.SharedVocabulary(Name, vs, vt, options.SliceToSharedVocabulary, "student lm_head", "teacher", logger, ref sliceLogged);
        if (shared != vs)
        {
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
