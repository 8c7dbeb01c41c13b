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
/// Not available for <c>atkd</c> (its batch-median split and per-group normalisers need all rows first). The lm_head
/// adapter slot (LoRA on lm_head) is not seen by the kernel, which uses <see cref="ICausalLM.LmHeadWeight"/> directly.
/// </remarks>
internal sealed class ChunkedObjective : IDistillationObjective
{
    private readonly ObjectiveDeclaration declaration;
    private readonly LossesOptions options;
    private readonly ILogger logger;
    private readonly ChunkDivergence divergence;
    private readonly bool scoreIgnored;
    private bool sliceLogged;

    internal ChunkedObjective(ObjectiveDeclaration declaration, LossesOptions options, ILogger logger)
    {
        if (!declaration.IsTokenLevel || !declaration.HasChunkedVariant)
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

    /// <summary>Gets the base names that have a chunked variant (the token-level built-in declarations).</summary>
    internal static IReadOnlyList<string> SupportedBaseNames =>
        [.. DistillObjectives.BuiltIn.Where(d => d.IsTokenLevel && d.HasChunkedVariant).Select(d => d.Name)];

    public string Name { get; }

    public ObjectiveRequirements Requirements { get; }

    public nn.Module? Module => null;

    public void Validate(ObjectiveSetup setup) => ObjectiveChecks.Validate(Name, Requirements, setup, options.SliceToSharedVocabulary, chunked: true);

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
        var teacher = divergence.NeedsTeacher ? Teacher(context, b * len, ref weight, ref bias) : TeacherSource.None;
        Action<Tensor, long>? check = options.CheckFinite ? (s, start) => CheckChunk(s, start, len) : null;
        var flatLabels = labels.reshape(-1);
        var loss = FusedLinearDivergence.Apply(hidden.reshape(b * len, -1), weight, bias, teacher, flatLabels, divergence, options.ChunkSize, check);
        var count = TokenLevelObjective.ScoreMask(labels, scoreIgnored).sum();
        var normalizer = count.to(ScalarType.Float32);
        if (scoreIgnored)
        {
            loss = loss / normalizer.ne(0).to(ScalarType.Float32); // official: mean of an empty selection is NaN (0/0)
        }

        return ObjectiveResults.Create(loss, normalizer, count, new Dictionary<string, Tensor>(StringComparer.Ordinal) { ["loss"] = loss });
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
