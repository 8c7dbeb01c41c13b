using Distill.Losses.Kernels;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using static TorchSharp.torch;

namespace Distill.Losses;

/// <summary>
/// A per-token loss: from student logits [..., V], teacher logits [..., V] (<see langword="null"/> for teacher-free
/// objectives) and labels [...] (aligned, −100 allowed), the loss of every position, [...] float32, unmasked.
/// </summary>
/// <param name="studentLogits">[..., V]; float32 or bfloat16 (compute in float32).</param>
/// <param name="teacherLogits">[..., V] without gradient, or <see langword="null"/>.</param>
/// <param name="labels">[...] int64; −100 positions may hold any finite value (the caller masks them).</param>
/// <returns>[...] float32.</returns>
public delegate Tensor TokenLoss(Tensor studentLogits, Tensor? teacherLogits, Tensor labels);

/// <summary>How a chunked objective reports the fused kernel's summed loss.</summary>
internal enum ChunkedNormalization
{
    /// <summary><c>LossSum</c> = the kernel's sum, <c>Normalizer</c> = the scored tokens (token-level objectives).</summary>
    ScoredTokens,

    /// <summary>
    /// <c>LossSum</c> = the kernel's sum divided by the scored tokens N (0 when N = 0), <c>Normalizer</c> = 1: objectives whose
    /// loss is a per-micro-batch mean (ATKD, whose chunk loss sums L·N).
    /// </summary>
    MicroBatchMean,
}

/// <summary>One weighted term of a token-level objective: <c>LossSum = Σ Weight · Σ_scored PerToken</c>.</summary>
/// <param name="Metric">The metric name the term's sum is reported under (e.g. <c>ce</c>, <c>kd</c>).</param>
/// <param name="Weight">The term's weight in the loss.</param>
/// <param name="PerToken">The per-token function; the same function serves the full-logits and the chunked (<c>_chunked</c>) variant.</param>
public sealed record ObjectiveTerm(string Metric, double Weight, TokenLoss PerToken);

/// <summary>
/// The one declaration of an objective: its name, its options section, what it needs, and either its per-token terms
/// (token-level objectives; the full-logits objective and the fused chunked variant are derived from them) or a
/// constructor (objectives that do not decompose per token, or that hold parameters).
/// </summary>
/// <remarks>
/// <para>Adding a divergence is one file (the per-token math) plus one declaration, e.g.
/// <c>ObjectiveDeclaration.Divergence("hellinger", o =&gt; (s, t, y) =&gt; Hellinger.PerToken(s, t!, o.Divergence.Temperature))</c>;
/// create it with <see cref="Create"/> or register it with <c>AddDistillObjective(declaration)</c>. The built-in declarations
/// are <see cref="DistillObjectives.BuiltIn"/>.</para>
/// <para>Token-level objectives return <c>LossSum</c> = the weighted masked sums, <c>Normalizer</c> = <c>ScoredTokens</c> = the
/// number of scored positions (labels ≠ −100): DSKD's and ATKD's token-level mean, TRL's <c>batchmean</c> over tokens.</para>
/// </remarks>
public sealed record ObjectiveDeclaration
{
    /// <summary>Gets the registered name (the papers' <c>KD_OBJ</c> / <c>--kl_method</c> string).</summary>
    public required string Name { get; init; }

    /// <summary>Gets the <see cref="LossesOptions"/> section the objective reads (e.g. <c>Divergence</c>, <c>Atkd</c>, <c>CrossTokenizer:Dskd</c>).</summary>
    public required string OptionsSection { get; init; }

    /// <summary>Gets what the objective needs.</summary>
    /// <value>The default is a same-vocabulary objective reading student and teacher logits.</value>
    public ObjectiveRequirements Requirements { get; init; } = LogitsPair;

    /// <summary>Gets other names the objective is also registered under (e.g. DSKD's <c>--criterion</c> names).</summary>
    public IReadOnlyList<string> Aliases { get; init; } = [];

    /// <summary>Gets the weighted per-token terms of a token-level objective (read from the options), or <see langword="null"/> when <see cref="Factory"/> builds the objective.</summary>
    public Func<LossesOptions, IReadOnlyList<ObjectiveTerm>>? Terms { get; init; }

    /// <summary>Gets the constructor of an objective that is not token-level, or <see langword="null"/> for token-level objectives.</summary>
    public Func<LossesOptions, ILogger, IDistillationObjective>? Factory { get; init; }

    /// <summary>
    /// Gets a value indicating whether a fused <c>&lt;name&gt;_chunked</c> variant is registered: for token-level objectives, and
    /// for built-in batch-level objectives that declare a chunk loss (<c>atkd</c>, the sparse top-k objectives).
    /// </summary>
    /// <value>The default is <see langword="true"/>.</value>
    public bool HasChunkedVariant { get; init; } = true;

    /// <summary>Gets an optional check run when the objective computes (e.g. a configuration the reference code cannot run); it throws to refuse.</summary>
    public Action<LossesOptions>? Check { get; init; }

    /// <summary>Gets an optional transform of the labels before masking (e.g. ATKD's <c>labels == pad_token_id</c> mask); returns the labels to use.</summary>
    public Func<LossesOptions, Tensor, Tensor>? Labels { get; init; }

    /// <summary>Gets an optional switch to score the <i>ignored</i> positions instead of the scored ones (ATKD's official <c>tvd</c> defect); normalised by their count.</summary>
    public Func<LossesOptions, bool>? ScoresIgnoredPositions { get; init; }

    /// <summary>Gets an optional description of an active compatibility quirk, logged once when the objective is created.</summary>
    public Func<LossesOptions, string?>? Quirk { get; init; }

    /// <summary>
    /// Gets an optional chunk loss for the fused kernel: a closed form of the terms (otherwise the kernel differentiates them),
    /// or the chunk loss of a batch-level objective (a <see cref="Factory"/> declaration), which then gets a chunked variant
    /// too. A batch-level chunk loss binds to the batch in <see cref="ChunkDivergence.Prepare"/> (ATKD's batch median, the
    /// sparse teacher's top-k rows).
    /// </summary>
    internal Func<LossesOptions, ChunkDivergence>? Chunk { get; init; }

    /// <summary>Gets how the chunked variant turns the kernel's summed loss into the objective's result (see <see cref="ChunkedNormalization"/>).</summary>
    internal ChunkedNormalization ChunkedNormalizer { get; init; } = ChunkedNormalization.ScoredTokens;

    /// <summary>Gets a value indicating whether the <c>_chunked</c> variant is served: token-level, or batch-level with a <see cref="Chunk"/> loss.</summary>
    internal bool ServesChunked => HasChunkedVariant && (IsTokenLevel || Chunk is not null);

    /// <summary>Requirements of a same-vocabulary objective that reads full student and teacher logits.</summary>
    public static ObjectiveRequirements LogitsPair { get; } = new()
    {
        NeedsTeacher = true,
        NeedsTeacherLogits = true,
        NeedsStudentLogits = true,
        RequiresSameVocabulary = true,
    };

    /// <summary>Requirements of a teacher-free objective on student logits (SFT, SeqKD).</summary>
    public static ObjectiveRequirements StudentOnly { get; } = new()
    {
        NeedsTeacher = false,
        NeedsTeacherLogits = false,
        NeedsStudentLogits = true,
        RequiresSameVocabulary = false,
    };

    /// <summary>
    /// Declares a DSKD-style divergence objective: <c>LossSum = (1 − α)·CE_sum + α·KD_sum</c> with α =
    /// <see cref="DivergenceKdOptions.KdRate"/>, metrics <c>ce</c> and <c>kd</c>, options section <c>Divergence</c>.
    /// </summary>
    /// <param name="name">The name.</param>
    /// <param name="kd">The per-token divergence, given the options (read <see cref="LossesOptions.Divergence"/> for T).</param>
    /// <returns>The declaration.</returns>
    public static ObjectiveDeclaration Divergence(string name, Func<LossesOptions, TokenLoss> kd)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentNullException.ThrowIfNull(kd);
        return new ObjectiveDeclaration
        {
            Name = name,
            OptionsSection = nameof(LossesOptions.Divergence),
            Terms = o =>
            [
                new ObjectiveTerm("ce", 1 - o.Divergence.KdRate, CrossEntropyLoss),
                new ObjectiveTerm("kd", o.Divergence.KdRate, kd(o)),
            ],
        };
    }

    /// <summary>Declares a pure-KD token-level objective: <c>LossSum = KD_sum</c>, metric <c>kd</c>.</summary>
    /// <param name="name">The name.</param>
    /// <param name="optionsSection">The section of <see cref="LossesOptions"/> it reads.</param>
    /// <param name="kd">The per-token divergence, given the options.</param>
    /// <returns>The declaration.</returns>
    public static ObjectiveDeclaration PureKd(string name, string optionsSection, Func<LossesOptions, TokenLoss> kd)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentNullException.ThrowIfNull(kd);
        return new ObjectiveDeclaration { Name = name, OptionsSection = optionsSection, Terms = o => [new ObjectiveTerm("kd", 1.0, kd(o))] };
    }

    /// <summary>The student's token cross-entropy as a <see cref="TokenLoss"/> (ignores the teacher).</summary>
    public static TokenLoss CrossEntropyLoss { get; } = (s, _, y) => CrossEntropy.PerToken(s, y);

    /// <summary>Gets a value indicating whether the declaration is token-level (has <see cref="Terms"/>).</summary>
    public bool IsTokenLevel => Terms is not null;

    /// <summary>Creates the objective without DI.</summary>
    /// <param name="options">The options (validated here); <see langword="null"/> = defaults.</param>
    /// <param name="logger">Where warnings go (vocabulary slicing, compatibility modes); <see langword="null"/> = nowhere.</param>
    /// <returns>A new objective (objectives are not thread-safe: one per trainer).</returns>
    /// <exception cref="ArgumentException">Invalid options (the message names every property that breaks a rule).</exception>
    public IDistillationObjective Create(LossesOptions? options = null, ILogger? logger = null)
    {
        options ??= new LossesOptions();
        LossesOptionsValidation.ThrowIfInvalid(options);
        logger ??= NullLogger.Instance;
        if (Quirk?.Invoke(options) is { } quirk)
        {
            Log.CompatibilityMode(logger, Name, quirk);
        }

        if (Factory is not null)
        {
            return Factory(options, logger);
        }

        return new TokenLevelObjective(this, options, logger);
    }

    /// <summary>Creates the fused chunked variant (<c>&lt;name&gt;_chunked</c>) without DI.</summary>
    /// <param name="options">The options (validated here); <see langword="null"/> = defaults.</param>
    /// <param name="logger">Where warnings go.</param>
    /// <returns>A new chunked objective.</returns>
    /// <exception cref="InvalidOperationException">The declaration has no chunked variant.</exception>
    public IDistillationObjective CreateChunked(LossesOptions? options = null, ILogger? logger = null)
    {
        if (!ServesChunked)
        {
            throw new InvalidOperationException($"Objective '{Name}' has no chunked variant (token-level objectives and built-in objectives with a chunk loss do).");
        }

        options ??= new LossesOptions();
        LossesOptionsValidation.ThrowIfInvalid(options);
        logger ??= NullLogger.Instance;
        if (Quirk?.Invoke(options) is { } quirk)
        {
            Log.CompatibilityMode(logger, Name + ObjectiveNames.ChunkedSuffix, quirk);
        }

        return new ChunkedObjective(this, options, logger);
    }

    /// <summary>The chunk loss of the fused kernel: <see cref="Chunk"/> when given, else the weighted masked sum of the terms.</summary>
    internal ChunkDivergence ChunkLoss(LossesOptions options)
    {
        if (Chunk is not null)
        {
            return Chunk(options);
        }

        var terms = Terms!(options);
        var scoreIgnored = ScoresIgnoredPositions?.Invoke(options) ?? false;
        return new FunctionChunkDivergence(
            (s, t, y) => TokenLevelObjective.WeightedSum(terms, s, t, y, TokenLevelObjective.ScoreMask(y, scoreIgnored)).Loss,
            needsTeacher: Requirements.NeedsTeacher);
    }
}
