using Distill.Losses.CrossTokenizer;
using Distill.Losses.DualSpace;
using Distill.Losses.Kernels;
using Microsoft.Extensions.Logging;

namespace Distill.Losses;

/// <summary>
/// The built-in objectives, each declared once, and creation by name without DI:
/// <c>DistillObjectives.Create("forward_kl", options)</c>. <c>AddDistillLosses()</c> registers exactly these declarations
/// (plus the <c>_chunked</c> variant of every token-level one, and the aliases).
/// </summary>
/// <remarks>
/// Normalisers (what <see cref="ObjectiveResult.Normalizer"/> holds, so that the trainer's window loss is the papers' loss):
/// <list type="bullet">
/// <item>DSKD family, <c>dskd</c>, <c>dskd_cma</c>, <c>uld_dskd</c>, <c>min_ed</c>: scored student tokens — DSKD divides the
/// summed loss by the token count (<c>batch_denom</c>).</item>
/// <item>ATKD token-level methods: scored tokens — ATKD's token-level mean; official <c>tvd</c> (compatibility mode) divides by
/// the ignored positions, as its code does.</item>
/// <item><c>gkd_jsd</c>: scored tokens — TRL's <c>generalized_jsd_loss</c> with <c>batchmean</c> over the non-masked tokens.</item>
/// <item><c>sft</c>, <c>seqkd</c>: scored tokens — HF causal-LM mean token cross-entropy.</item>
/// <item><c>atkd</c>, <c>atkd_chunked</c>: 1 — its easy/hard groups have their own normalisers, so the loss is a per-micro-batch mean, averaged
/// over micro-batches as HF Trainer does.</item>
/// <item><c>uld</c>: 1 — llm-recipes' loss is a per-batch mean (<c>loss / gradient_accumulation_steps</c>).</item>
/// </list>
/// <see cref="ObjectiveResult.ScoredTokens"/> is always the real number of scored tokens (for <c>tokens</c> and <c>tokens_per_s</c>).
/// </remarks>
public static class DistillObjectives
{
    private static readonly Lazy<IReadOnlyList<ObjectiveDeclaration>> All = new(Declare);

    /// <summary>Gets the built-in declarations, in registration order.</summary>
    public static IReadOnlyList<ObjectiveDeclaration> BuiltIn => All.Value;

    /// <summary>Gets every name <see cref="Create"/> accepts: the declarations, their <c>_chunked</c> variants and the aliases.</summary>
    public static IReadOnlyCollection<string> Names => [.. Registrations(BuiltIn).Select(r => r.Name)];

    /// <summary>Creates a built-in objective by name without DI.</summary>
    /// <param name="name">A name of <see cref="Names"/> (e.g. <c>forward_kl</c>, <c>atkd</c>, <c>reverse_kl_chunked</c>, <c>dskd_cma</c>).</param>
    /// <param name="options">The options (validated here); <see langword="null"/> = defaults.</param>
    /// <param name="logger">Where warnings go; <see langword="null"/> = nowhere.</param>
    /// <returns>A new objective.</returns>
    /// <exception cref="ArgumentException">An unknown name (the message lists the known ones), or invalid options.</exception>
    public static IDistillationObjective Create(string name, LossesOptions? options = null, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(name);
        foreach (var registration in Registrations(BuiltIn))
        {
            if (registration.Name == name)
            {
                return registration.Build(options ?? new LossesOptions(), logger);
            }
        }

        throw new ArgumentException($"Unknown distillation objective '{name}'. Known objectives: {string.Join(", ", Names.Order(StringComparer.Ordinal))}.", nameof(name));
    }

    /// <summary>The names a declaration is served under: its name, the <c>_chunked</c> variant and its aliases.</summary>
    internal static IEnumerable<(string Name, Func<LossesOptions, ILogger?, IDistillationObjective> Build)> Registrations(IEnumerable<ObjectiveDeclaration> declarations)
    {
        foreach (var d in declarations)
        {
            yield return (d.Name, (o, l) => d.Create(o, l));
            if (d.ServesChunked)
            {
                yield return (d.Name + ObjectiveNames.ChunkedSuffix, (o, l) => d.CreateChunked(o, l));
            }

            foreach (var alias in d.Aliases)
            {
                yield return (alias, (o, l) => d.Create(o, l));
            }
        }
    }

    private static List<ObjectiveDeclaration> Declare() =>
    [
        // DSKD's various_divergence family: (1 − α)·CE + α·KD at temperature T (section Divergence).
        ObjectiveDeclaration.Divergence(ObjectiveNames.ForwardKl, o => (s, t, _) => ForwardKl.PerToken(s, t!, o.Divergence.Temperature))
            with { Chunk = o => new ForwardKlChunkDivergence(o.Divergence.KdRate, o.Divergence.Temperature) },
        ObjectiveDeclaration.Divergence(ObjectiveNames.ReverseKl, o => (s, t, _) => ReverseKl.PerToken(s, t!, o.Divergence.Temperature)),
        ObjectiveDeclaration.Divergence(ObjectiveNames.JsDivergence, o => (s, t, _) => JsDivergence.PerToken(s, t!, o.Divergence.Temperature)),
        ObjectiveDeclaration.Divergence(ObjectiveNames.SkewedForwardKl, o => (s, t, _) => SkewKl.Forward(s, t!, o.Divergence.SkewLambda, o.Divergence.Temperature)),
        ObjectiveDeclaration.Divergence(ObjectiveNames.SkewedReverseKl, o => (s, t, _) => SkewKl.Reverse(s, t!, o.Divergence.SkewLambda, o.Divergence.Temperature)),
        ObjectiveDeclaration.Divergence(ObjectiveNames.AdaptiveKl, o => (s, t, _) => AdaptiveKl.PerToken(s, t!, o.Divergence.AdaptiveKlAlpha, o.Divergence.Temperature)),

        // ATKD's token-level --kl_method values: pure KD at T_s, T_t (section Atkd); quirks in AtkdQuirks.
        Atkd(ObjectiveNames.AtkdForward, o => AtkdQuirks.Scaled(o.Atkd, (s, t) => ForwardKl.PerToken(s, t))),
        Atkd(ObjectiveNames.AtkdReverse, o => AtkdQuirks.Scaled(o.Atkd, (s, t) => ReverseKl.PerToken(s, t))),
        Atkd(ObjectiveNames.AtkdJsd, AtkdQuirks.Jsd),
        Atkd(ObjectiveNames.AtkdTvd, o => AtkdQuirks.Scaled(o.Atkd, (s, t) => TotalVariation.PerToken(s, t))) with { ScoresIgnoredPositions = AtkdQuirks.TvdScoresIgnored },
        Atkd(ObjectiveNames.AtkdDkd, null) with
        {
            Terms = o =>
            [
                new ObjectiveTerm("tckd", o.Atkd.Alpha, (s, t, y) => Dkd.PerToken(LossMath.Scale(s, o.Atkd.StudentTemperature), LossMath.Scale(t!, o.Atkd.TeacherTemperature), y).Tckd),
                new ObjectiveTerm("nckd", o.Atkd.Beta, (s, t, y) => Dkd.PerToken(LossMath.Scale(s, o.Atkd.StudentTemperature), LossMath.Scale(t!, o.Atkd.TeacherTemperature), y).Nckd),
            ],
            Check = AtkdQuirks.ThrowIfOfficialDkd,
        },
        new ObjectiveDeclaration
        {
            Name = ObjectiveNames.Atkd,
            OptionsSection = nameof(LossesOptions.Atkd),
            Factory = (o, logger) => new AtkdObjective(o, logger),
            Quirk = o => AtkdQuirks.Describe(ObjectiveNames.Atkd, o),
            Labels = AtkdQuirks.Labels,

            // atkd_chunked: two passes over the chunks (teacher statistics, then loss and gradients); the kernel sums L·N.
            Chunk = o => new AtkdChunkDivergence(
                o.Atkd.Alpha, o.Atkd.StudentTemperature, o.Atkd.TeacherTemperature, o.Atkd.Setting == AtkdSetting.Reverse, o.Atkd.OfficialCompatibility),
            ChunkedNormalizer = ChunkedNormalization.MicroBatchMean,
        },

        // GKD's generalised JSD(β) as TRL (section Gkd), pure KD.
        ObjectiveDeclaration.PureKd(ObjectiveNames.GkdJsd, nameof(LossesOptions.Gkd), o => (s, t, _) => GeneralizedJsd.PerToken(s, t!, o.Gkd.Beta, o.Gkd.Temperature)),

        // Teacher-free cross-entropy: SFT, and SeqKD (SFT on teacher-generated sequences).
        Sft(ObjectiveNames.Sft),
        Sft(ObjectiveNames.SeqKd),

        // Dual-space and cross-tokenizer objectives (section CrossTokenizer), with DSKD's --criterion names as aliases.
        new ObjectiveDeclaration
        {
            Name = DskdObjective.RegisteredName,
            OptionsSection = "CrossTokenizer:Dskd",
            Requirements = DskdObjective.Needs,
            Aliases = ["dual_space_kd"],
            Factory = (o, _) => new DskdObjective(o.CrossTokenizer.Dskd),
        },
        new ObjectiveDeclaration
        {
            Name = DskdCmaObjective.RegisteredName,
            OptionsSection = "CrossTokenizer:DskdCma",
            Requirements = DskdCmaObjective.Needs,
            Aliases = ["dual_space_kd_with_cma"],
            Factory = (o, _) => new DskdCmaObjective(o.CrossTokenizer.DskdCma),
        },
        new ObjectiveDeclaration
        {
            Name = UldObjective.RegisteredName,
            OptionsSection = "CrossTokenizer:Uld",
            Requirements = CrossTokenizerRequirements.LogitsAndTeacherTokens,
            Factory = (o, _) => new UldObjective(o.CrossTokenizer.Uld),
        },
        new ObjectiveDeclaration
        {
            Name = UldDskdObjective.RegisteredName,
            OptionsSection = "CrossTokenizer:UldDskd",
            Requirements = CrossTokenizerRequirements.LogitsAndTeacherTokens,
            Aliases = ["universal_logit_distillation"],
            Factory = (o, _) => new UldDskdObjective(o.CrossTokenizer.UldDskd),
        },
        new ObjectiveDeclaration
        {
            Name = MinEdObjective.RegisteredName,
            OptionsSection = "CrossTokenizer:MinEd",
            Requirements = CrossTokenizerRequirements.LogitsAndTeacherTokens,
            Aliases = ["min_edit_dis_kld"],
            Factory = (o, logger) => CrossTokenizerRegistrations.CreateMinEd(o.CrossTokenizer.MinEd, logger),
        },
        Sparse(SparseKdObjective.ForwardKlName),
        Sparse(SparseKdObjective.ReverseKlName),
        Sparse(SparseKdObjective.JsdName),
        Sparse(SparseKdObjective.TvdName),
    ];

    private static ObjectiveDeclaration Atkd(string name, Func<LossesOptions, TokenLoss>? kd) => new()
    {
        Name = name,
        OptionsSection = nameof(LossesOptions.Atkd),
        Terms = kd is null ? null : o => [new ObjectiveTerm("kd", 1.0, kd(o))],
        Labels = AtkdQuirks.Labels,
        Quirk = o => AtkdQuirks.Describe(name, o),
    };

    private static ObjectiveDeclaration Sparse(string name) => new()
    {
        Name = name,
        OptionsSection = nameof(LossesOptions.Sparse),
        Requirements = SparseKdObjective.SparseRequirements,
        Factory = (o, _) => new SparseKdObjective(name, o.Sparse),

        // <name>_chunked: student hidden states × lm_head chunk by chunk against the top-k rows; no [tokens × V] teacher tensor.
        Chunk = o => new SparseChunkDivergence(name, o.Sparse),
    };

    private static ObjectiveDeclaration Sft(string name) => new()
    {
        Name = name,
        OptionsSection = nameof(LossesOptions),
        Requirements = ObjectiveDeclaration.StudentOnly,
        Terms = _ => [new ObjectiveTerm("ce", 1.0, ObjectiveDeclaration.CrossEntropyLoss)],
    };
}
