using System.ComponentModel.DataAnnotations;
using Distill.Losses.CrossTokenizer;
using Microsoft.Extensions.Options;

namespace Distill.Losses;

/// <summary>Options of every objective, bound by <c>AddDistillLosses()</c> (configuration section e.g. <c>"Losses"</c>) or passed to <see cref="DistillObjectives.Create"/>.</summary>
/// <remarks>
/// One section per objective family: <see cref="Divergence"/> (DSKD's <c>--kd-objective</c> family), <see cref="Atkd"/>
/// (ATKD's <c>--kl_method</c> family), <see cref="Gkd"/> and <see cref="CrossTokenizer"/> (dual-space and cross-tokenizer
/// objectives). The chunked variants (<c>*_chunked</c>) use the same family options plus <see cref="ChunkSize"/>. Validated by
/// the source-generated <c>[OptionsValidator]</c> at start-up (DI) or when an objective is created.
/// </remarks>
public sealed class LossesOptions
{
    /// <summary>Gets or sets a value indicating whether student and teacher logits of different widths are cut to the shared width.</summary>
    /// <value>The default is <see langword="false"/>: a mismatch (e.g. 151936 vs 152064) is an error naming both shapes.</value>
    /// <remarks>Only correct when both models share a tokenizer and the extra rows are padding (Qwen-style padded vocabularies).</remarks>
    public bool SliceToSharedVocabulary { get; set; }

    /// <summary>Gets or sets a value indicating whether logits are checked for NaN and +inf (reported with their position) before each loss.</summary>
    /// <value>The default is <see langword="false"/>.</value>
    /// <remarks>
    /// A debugging aid: one extra pass over the logits and one host read (a device sync) per micro-batch. Off by default so that
    /// a training step reads nothing back; the trainer's non-finite guard stops a run whose loss turns NaN. −inf is always allowed.
    /// </remarks>
    public bool CheckFinite { get; set; }

    /// <summary>Gets or sets the number of token rows per chunk of the fused lm_head + divergence kernels.</summary>
    /// <value>The default is <see langword="null"/>: chosen from V and H under a working-set budget (H/8 rows, 128 to 1024; see docs/kernels.md).</value>
    /// <remarks>Peak memory of a chunked objective is about a few [ChunkSize, V] float32 tensors plus the lm_head gradient.</remarks>
    [Range(1, 1 << 24)]
    public int? ChunkSize { get; set; }

    /// <summary>Gets or sets a value indicating whether chunked objectives ask a local teacher for hidden states (teacher logits computed chunk by chunk from its lm_head) instead of full logits.</summary>
    /// <value>The default is <see langword="true"/>. Teacher logits are used when present either way.</value>
    public bool ChunkedTeacherFromHiddenStates { get; set; } = true;

    /// <summary>
    /// Gets or sets a value indicating whether the fused chunked kernels run their [rows, ·]-shaped matrix products (student
    /// logits, dL/dh; the teacher's chunk logits from hidden states) in bfloat16 when the lm_head is float32: inputs rounded
    /// to bfloat16, products accumulated in float32 by libtorch and returned in bfloat16, then converted to float32. dL/dW
    /// stays a float32 product accumulated in place.
    /// </summary>
    /// <value>The default is <see langword="false"/> (float32 products).</value>
    /// <remarks>
    /// Faster on CPUs with AVX-512 BF16 or AMX and on GPUs; the logits then carry a relative error of about 2⁻⁸ (bfloat16's
    /// 8-bit significand) and the gradients a few times that. Measured accuracy and speed: docs/kernels.md.
    /// </remarks>
    public bool ChunkedBfloat16Matmuls { get; set; }

    /// <summary>Gets the options of the DSKD divergence family.</summary>
    [ValidateObjectMembers]
    public DivergenceKdOptions Divergence { get; init; } = new();

    /// <summary>Gets the options of the ATKD family.</summary>
    [ValidateObjectMembers]
    public AtkdOptions Atkd { get; init; } = new();

    /// <summary>Gets the options of GKD's generalised JSD.</summary>
    [ValidateObjectMembers]
    public GkdOptions Gkd { get; init; } = new();

    /// <summary>Gets the options of the dual-space and cross-tokenizer objectives (<c>dskd</c>, <c>dskd_cma</c>, <c>uld</c>, <c>uld_dskd</c>, <c>min_ed</c>).</summary>
    [ValidateObjectMembers]
    public CrossTokenizerOptions CrossTokenizer { get; init; } = new();

    /// <summary>Gets the options of the sparse top-k objectives (<c>sparse_forward_kl</c>, <c>sparse_reverse_kl</c>, <c>sparse_jsd</c>, <c>sparse_tvd</c>).</summary>
    [ValidateObjectMembers]
    public SparseTopKOptions Sparse { get; init; } = new();
}

/// <summary>
/// Options of the DSKD <c>various_divergence</c> family (<c>forward_kl</c>, <c>reverse_kl</c>, <c>js_divergence</c>,
/// <c>skewed_forward_kl</c>, <c>skewed_reverse_kl</c>, <c>adaptive_kl</c>): sum = (1 − α)·CE_sum + α·KD_sum.
/// </summary>
public sealed class DivergenceKdOptions
{
    /// <summary>Gets or sets α (DSKD <c>--kd-rate</c>), the weight of the KD term; CE gets 1 − α.</summary>
    /// <value>The default is 0.5 (every DSKD script).</value>
    [Range(0.0, 1.0)]
    public double KdRate { get; set; } = LossesDefaults.KdRate;

    /// <summary>Gets or sets the temperature T (DSKD <c>--kd-temperature</c>) applied to student and teacher logits; no T² factor.</summary>
    /// <value>The default is 2.0 (DSKD's scripts; its argparse default is 1.0).</value>
    [Range(1e-6, 1e6)]
    public double Temperature { get; set; } = LossesDefaults.DskdTemperature;

    /// <summary>Gets or sets λ of the skew KL divergences (DSKD <c>--skew-lambda</c>).</summary>
    /// <value>The default is 0.1.</value>
    [Range(0.0, 1.0)]
    public double SkewLambda { get; set; } = LossesDefaults.SkewLambda;

    /// <summary>Gets or sets the tail-mass threshold α of adaptive KL (DSKD <c>--adaptive-kl-alpha</c>).</summary>
    /// <value>The default is 0.5.</value>
    [Range(0.0, 1.0)]
    public double AdaptiveKlAlpha { get; set; } = LossesDefaults.AdaptiveKlAlpha;
}

/// <summary>ATKD's <c>--setting</c>.</summary>
public enum AtkdSetting
{
    /// <summary>Student and teacher in their roles (ATKD default).</summary>
    Vanilla,

    /// <summary>Student and teacher logits swapped before the loss (reverse-KL flavour).</summary>
    Reverse,
}

/// <summary>Options of the ATKD family (<c>atkd_forward</c>, <c>atkd_reverse</c>, <c>atkd_jsd</c>, <c>atkd_tvd</c>, <c>atkd_dkd</c>, <c>atkd</c>): pure KD, no CE.</summary>
/// <remarks>
/// ATKD reports token-level means; here every objective returns its sum and token count (the trainer divides). With
/// <see cref="OfficialCompatibility"/> the shipped code's defects are reproduced: <c>atkd_tvd</c> averages over the
/// <i>ignored</i> positions, <c>atkd_dkd</c> throws (the official call raises TypeError), <c>atkd_jsd</c> is
/// 0.9·forward + 0.1·reverse KL, and <c>atkd</c> is NaN when a group is empty.
/// </remarks>
public sealed class AtkdOptions
{
    /// <summary>Gets or sets α: ATKD's easy-group weight (loss = α·NCKD_easy + (1−α)·(TCKD_hard + NCKD_hard)) and DKD's TCKD weight.</summary>
    /// <value>The default is 0.2 (ATKD <c>TrainingArguments.alpha</c>).</value>
    [Range(0.0, 1.0)]
    public double Alpha { get; set; } = LossesDefaults.AtkdAlpha;

    /// <summary>Gets or sets β: DKD's NCKD weight.</summary>
    /// <value>The default is 1.0 (ATKD <c>TrainingArguments.beta</c>).</value>
    [Range(0.0, 1e6)]
    public double Beta { get; set; } = LossesDefaults.AtkdBeta;

    /// <summary>Gets or sets the student temperature T_s.</summary>
    /// <value>The default is 1.0 (hard-coded in ATKD).</value>
    [Range(1e-6, 1e6)]
    public double StudentTemperature { get; set; } = 1.0;

    /// <summary>Gets or sets the teacher temperature T_t.</summary>
    /// <value>The default is 1.0 (hard-coded in ATKD).</value>
    [Range(1e-6, 1e6)]
    public double TeacherTemperature { get; set; } = 1.0;

    /// <summary>Gets or sets ATKD's setting.</summary>
    /// <value>The default is <see cref="AtkdSetting.Vanilla"/>.</value>
    public AtkdSetting Setting { get; set; } = AtkdSetting.Vanilla;

    /// <summary>Gets or sets the forward-KL share of the official <c>jsd</c> (used only with <see cref="OfficialCompatibility"/>).</summary>
    /// <value>The default is 0.9 (ATKD's <c>fwd_loss_ratio</c>).</value>
    [Range(0.0, 1.0)]
    public double JsdForwardRatio { get; set; } = LossesDefaults.AtkdJsdForwardRatio;

    /// <summary>Gets or sets a label id that is also ignored (as −100) by every ATKD objective, or <see langword="null"/>.</summary>
    /// <value>The default is <see langword="null"/>: only labels −100 are ignored.</value>
    /// <remarks>
    /// ATKD's output mask is <c>(labels == −100) | (labels == pad_token_id)</c>; with OPT, pad = EOS, so every EOS label (also
    /// real ones inside responses) is left out of the loss. Set this to the pad id to reproduce that.
    /// </remarks>
    [Range(typeof(long), "0", "9223372036854775807")]
    public long? MaskPadTokenId { get; set; }

    /// <summary>Gets or sets a value indicating whether the official code's defects are reproduced (to match paper numbers).</summary>
    /// <value>The default is <see langword="false"/>: the intended behaviour (TVD over scored positions, DKD with α and β, a true JSD, empty ATKD groups add 0).</value>
    public bool OfficialCompatibility { get; set; }
}

/// <summary>Options of <c>gkd_jsd</c>, the generalised JSD(β) of GKD as TRL implements it (pure KD).</summary>
public sealed class GkdOptions
{
    /// <summary>Gets or sets β: 0 = forward KL, 1 = reverse KL, between = JSD with mixture β·p + (1−β)·q.</summary>
    /// <value>The default is 0.5 (TRL <c>GKDConfig.beta</c>).</value>
    [Range(0.0, 1.0)]
    public double Beta { get; set; } = LossesDefaults.GkdBeta;

    /// <summary>Gets or sets the temperature applied to both logits.</summary>
    /// <value>The default is 0.9 (TRL <c>GKDConfig.temperature</c>).</value>
    [Range(1e-6, 1e6)]
    public double Temperature { get; set; } = LossesDefaults.GkdTemperature;
}

/// <summary>Default values of <see cref="LossesOptions"/> and its sections.</summary>
internal static class LossesDefaults
{
    public const double KdRate = 0.5;
    public const double DskdTemperature = 2.0;
    public const double SkewLambda = 0.1;
    public const double AdaptiveKlAlpha = 0.5;
    public const double AtkdAlpha = 0.2;
    public const double AtkdBeta = 1.0;
    public const double AtkdJsdForwardRatio = 0.9;
    public const double GkdBeta = 0.5;
    public const double GkdTemperature = 0.9;
}

/// <summary>Validates <see cref="LossesOptions"/> (data annotations, nested sections included) at start-up.</summary>
[OptionsValidator]
internal sealed partial class LossesOptionsValidator : IValidateOptions<LossesOptions>
{
}

/// <summary>Runs the source-generated validators outside DI (objectives created directly).</summary>
internal static class LossesOptionsValidation
{
    /// <summary>Throws <see cref="ArgumentException"/> naming every broken rule of <paramref name="options"/>.</summary>
    internal static void ThrowIfInvalid(LossesOptions options) => ThrowIfInvalid(new LossesOptionsValidator().Validate(null, options), nameof(options));

    /// <summary>Throws <see cref="ArgumentException"/> when <paramref name="result"/> failed, listing every failure.</summary>
    internal static void ThrowIfInvalid(ValidateOptionsResult result, string paramName)
    {
        if (result.Failed)
        {
            throw new ArgumentException(string.Join(" ", result.Failures ?? [result.FailureMessage]), paramName);
        }
    }
}
