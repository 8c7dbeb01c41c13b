using static TorchSharp.torch;

namespace Distill.Losses;

/// <summary>
/// A same-vocabulary objective against a sparse top-k teacher (<see cref="TeacherOutput.TopKIndices"/>,
/// <see cref="TeacherOutput.TopKLogProbs"/>, <see cref="TeacherOutput.TopKLogTailMass"/>): sum = (1 − α)·CE_sum + α·KD_sum
/// over scored tokens; the count is the number of scored tokens.
/// </summary>
internal sealed class SparseKdObjective : IDistillationObjective
{
    /// <summary>Sparse forward KL.</summary>
    internal const string ForwardKlName = "sparse_forward_kl";

    /// <summary>Sparse reverse KL.</summary>
    internal const string ReverseKlName = "sparse_reverse_kl";

    /// <summary>Sparse generalised JSD(β).</summary>
    internal const string JsdName = "sparse_jsd";

    /// <summary>Sparse total variation distance.</summary>
    internal const string TvdName = "sparse_tvd";

    /// <summary>Every name this class serves.</summary>
    internal static readonly string[] Names = [ForwardKlName, ReverseKlName, JsdName, TvdName];

    internal static readonly ObjectiveRequirements SparseRequirements = new()
    {
        NeedsTeacher = true,
        NeedsTeacherLogits = false,
        AcceptsSparseTopK = true,
        NeedsStudentLogits = true,
        RequiresSameVocabulary = true,
    };

    private readonly SparseTopKOptions options;

    internal SparseKdObjective(string name, SparseTopKOptions options)
    {
        if (!Names.Contains(name, StringComparer.Ordinal))
        {
            throw new ArgumentException($"'{name}' is not a sparse objective; known: {string.Join(", ", Names)}.", nameof(name));
        }

        Name = name;
        this.options = options;
    }

    public string Name { get; }

    public ObjectiveRequirements Requirements => SparseRequirements;

    public nn.Module? Module => null;

    /// <summary>The per-token sparse divergence of this objective, [B, T].</summary>
    internal Tensor PerToken(Tensor student, Tensor ids, Tensor logProbs, Tensor? logTail) => PerToken(Name, options, student, ids, logProbs, logTail);

    /// <summary>The per-token sparse divergence of objective <paramref name="name"/>, [...] (shared with the chunked variant).</summary>
    internal static Tensor PerToken(string name, SparseTopKOptions options, Tensor student, Tensor ids, Tensor logProbs, Tensor? logTail) => name switch
    {
        ForwardKlName => SparseForwardKl.PerToken(student, ids, logProbs, logTail, options.TailHandling, options.Temperature),
        ReverseKlName => SparseReverseKl.PerToken(student, ids, logProbs, logTail, options.TailHandling, options.Temperature),
        JsdName => SparseGeneralizedJsd.PerToken(student, ids, logProbs, logTail, options.TailHandling, options.Beta, options.Temperature),
        _ => SparseTotalVariation.PerToken(student, ids, logProbs, logTail, options.TailHandling, options.Temperature),
    };

    /// <summary>
    /// The teacher's targets with ignored positions made harmless: a padded cache row may hold anything (−inf, NaN), so
    /// ignored rows get a uniform top-k target and a −inf tail, and no NaN reaches the backward pass through 0·NaN.
    /// </summary>
    /// <param name="mask">[...] bool, true on scored positions.</param>
    /// <param name="logProbs">[..., K].</param>
    /// <param name="logTail">[...] or <see langword="null"/>.</param>
    internal static (Tensor LogProbs, Tensor? LogTail) SafeTargets(Tensor mask, Tensor logProbs, Tensor? logTail)
    {
        var uniform = -Math.Log(logProbs.shape[^1]);
        var safeLogProbs = where(mask.unsqueeze(-1), logProbs, logProbs.FullLike(uniform));
        var safeTail = logTail is null ? null : where(mask, logTail, full_like(logTail, TorchScalars.Constant(double.NegativeInfinity)));
        return (safeLogProbs, safeTail);
    }

    public ObjectiveResult Compute(ObjectiveContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var student = LogitsGuard.StudentLogits(context, Name);
        var teacher = context.Teacher;
        var ids = teacher?.TopKIndices
            ?? throw new InvalidOperationException($"Objective '{Name}' needs sparse teacher targets, but TeacherOutput.TopKIndices is null (use a cached or remote top-k teacher).");
        var logProbs = teacher.TopKLogProbs
            ?? throw new InvalidOperationException($"Objective '{Name}' needs TeacherOutput.TopKLogProbs, which is null.");
        var labels = context.Batch.Labels;
        if (ids.dim() != 3 || ids.shape[0] != labels.shape[0] || ids.shape[1] != labels.shape[1])
        {
            throw new ArgumentException($"Objective '{Name}': top-k ids [{string.Join(", ", ids.shape)}] do not match labels [{string.Join(", ", labels.shape)}]; expected [B, T, K].");
        }

        using var scope = NewDisposeScope();
        var mask = TokenReduction.ValidMask(labels);
        var ce = TokenReduction.MaskedSum(CrossEntropy.PerToken(student, labels), mask);
        var (safeLogProbs, safeTail) = SafeTargets(mask, logProbs, teacher.TopKLogTailMass);
        var kd = TokenReduction.MaskedSum(PerToken(student, ids, safeLogProbs, safeTail), mask);
        var alpha = options.KdRate;
        var loss = ce.Mul(1 - alpha).Add(kd.Mul(alpha));
        var scored = labels.ne(TorchScalars.Constant(DistillationBatch.IgnoreIndex)).sum();
        return ObjectiveResults.Create(loss, scored, scored, new Dictionary<string, Tensor> { ["ce"] = ce, ["kd"] = kd });
    }

    /// <summary>The teacher must provide sparse top-k targets; a known teacher vocabulary must equal the student's.</summary>
    public void Validate(ObjectiveSetup setup) => ValidateSparse(Name, setup);

    /// <summary>The setup rule of every sparse objective, chunked or not (see <see cref="Validate"/>).</summary>
    internal static void ValidateSparse(string name, ObjectiveSetup setup)
    {
        ArgumentNullException.ThrowIfNull(setup);
        if (setup.Teacher is not { } teacher)
        {
            throw new InvalidOperationException($"Objective '{name}' needs a teacher that provides sparse top-k log-probs (an offline cache or a remote server); there is none.");
        }

        if (!teacher.Capabilities.HasFlag(TeacherCapabilities.SparseTopK))
        {
            throw new InvalidOperationException($"Objective '{name}' needs sparse top-k teacher targets, but the teacher provides {teacher.Capabilities}. Use a cached or remote teacher, or the dense objective.");
        }

        if (teacher.VocabularySize > 0 && teacher.VocabularySize != setup.StudentVocabularySize)
        {
            throw new InvalidOperationException($"Objective '{name}': the teacher's vocabulary has {teacher.VocabularySize} entries but the student's logits have {setup.StudentVocabularySize}; sparse objectives index the student's logits with the teacher's ids, so both must share a tokenizer.");
        }
    }
}
