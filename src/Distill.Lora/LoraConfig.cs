using System.Text.Json.Nodes;

namespace Distill.Lora;

/// <summary>
/// A LoRA adapter configuration mirroring PEFT's <c>LoraConfig</c> / <c>adapter_config.json</c>
/// (Hu et al., "LoRA: Low-Rank Adaptation of Large Language Models", arXiv:2106.09685).
/// </summary>
/// <remarks>
/// <para>Targeting follows PEFT's <c>check_target_module_exists</c>: <see cref="TargetModules"/> (a list) matches a module
/// whose full name equals an entry or ends with <c>"." + entry</c>; <see cref="TargetModulesPattern"/> (a string) must match
/// the full module name as a regular expression, except the shorthand <see cref="AllLinear"/> which targets every dense
/// layer (<c>Distill.Models.Projection</c>) except the output layer <c>lm_head</c>. Exactly one of the two may be set; with
/// neither, injection through an <see cref="ICausalLM"/> uses PEFT's default for the model type (q_proj/v_proj for
/// Llama, Mistral and Qwen2, c_attn for GPT-2).</para>
/// <para>Keys of <c>adapter_config.json</c> that Distill does not interpret (<c>loftq_config</c>, <c>megatron_config</c>, ...)
/// are kept and written back unchanged on save.</para>
/// </remarks>
public sealed partial class LoraConfig
{
    /// <summary>The <see cref="TargetModulesPattern"/> shorthand for every dense layer except the output layer.</summary>
    public const string AllLinear = "all-linear";

    /// <summary>Gets or sets the rank r of the update <c>ΔW = (alpha / r)·B·A</c> (PEFT <c>r</c>).</summary>
    /// <value>The default is 8.</value>
    public int R { get; set; } = LoraDefaults.R;

    /// <summary>Gets or sets alpha, the numerator of the scaling (PEFT <c>lora_alpha</c>).</summary>
    /// <value>The default is 8.</value>
    public double LoraAlpha { get; set; } = LoraDefaults.LoraAlpha;

    /// <summary>Gets or sets the dropout probability applied to the adapter's input (PEFT <c>lora_dropout</c>).</summary>
    /// <value>The default is 0.</value>
    public double LoraDropout { get; set; }

    /// <summary>Gets or sets the module names (suffix match on name components) to adapt (PEFT <c>target_modules</c> as a list).</summary>
    /// <value>The default is <see langword="null"/>.</value>
    public IList<string>? TargetModules { get; set; }

    /// <summary>Gets or sets a regular expression that must match the full module name, or <see cref="AllLinear"/> (PEFT <c>target_modules</c> as a string).</summary>
    /// <value>The default is <see langword="null"/>.</value>
    public string? TargetModulesPattern { get; set; }

    /// <summary>Gets or sets module names (suffix match) never adapted (PEFT <c>exclude_modules</c> as a list).</summary>
    /// <value>The default is <see langword="null"/>.</value>
    public IList<string>? ExcludeModules { get; set; }

    /// <summary>Gets or sets a regular expression of full module names never adapted (PEFT <c>exclude_modules</c> as a string).</summary>
    /// <value>The default is <see langword="null"/>.</value>
    public string? ExcludeModulesPattern { get; set; }

    /// <summary>Gets or sets a value indicating whether the base weight is stored [in, out] (GPT-2 Conv1D) (PEFT <c>fan_in_fan_out</c>).</summary>
    /// <value>The default is <see langword="false"/>.</value>
    /// <remarks>As in PEFT, the layout of each targeted layer wins: injecting into a Conv1D sets this to <see langword="true"/>
    /// and into a linear layer to <see langword="false"/> (with a warning when it changes). It never changes the on-disk layout
    /// of the adapter: <c>lora_A</c> is always [r, in] and <c>lora_B</c> [out, r].</remarks>
    public bool FanInFanOut { get; set; }

    /// <summary>Gets or sets which base biases are trained and saved with the adapter (PEFT <c>bias</c>).</summary>
    /// <value>The default is <see cref="LoraBiasMode.None"/>.</value>
    public LoraBiasMode Bias { get; set; }

    /// <summary>Gets or sets a value indicating whether the scaling is <c>alpha/√r</c> (rank-stabilised LoRA, arXiv:2312.03732) instead of <c>alpha/r</c>.</summary>
    /// <value>The default is <see langword="false"/>.</value>
    public bool UseRslora { get; set; }

    /// <summary>Gets or sets modules (plain name suffix, as PEFT's <c>modules_to_save</c>) trained in full and saved with the adapter.</summary>
    /// <value>The default is <see langword="null"/>.</value>
    /// <remarks>PEFT trains a copy of these modules; Distill trains them in place, so unloading the adapter keeps their trained weights.</remarks>
    public IList<string>? ModulesToSave { get; set; }

    /// <summary>Gets or sets the layer indices to adapt (PEFT <c>layers_to_transform</c>); only with <see cref="TargetModules"/>.</summary>
    /// <value>The default is <see langword="null"/> (all layers).</value>
    public IList<int>? LayersToTransform { get; set; }

    /// <summary>Gets or sets the name(s) of the layer list holding the indices of <see cref="LayersToTransform"/> (PEFT <c>layers_pattern</c>, e.g. <c>layers</c> or <c>h</c>).</summary>
    /// <value>The default is <see langword="null"/> (the first numbered name component).</value>
    public IList<string>? LayersPattern { get; set; }

    /// <summary>Gets per-module ranks overriding <see cref="R"/>; keys are regular expressions matched against the end of the module name (PEFT <c>rank_pattern</c>).</summary>
    public IDictionary<string, int> RankPattern { get; } = new Dictionary<string, int>(StringComparer.Ordinal);

    /// <summary>Gets per-module alphas overriding <see cref="LoraAlpha"/>, matched like <see cref="RankPattern"/> (PEFT <c>alpha_pattern</c>).</summary>
    public IDictionary<string, double> AlphaPattern { get; } = new Dictionary<string, double>(StringComparer.Ordinal);

    /// <summary>Gets or sets a value indicating whether <c>lora_B</c> has a bias, added (scaled) to the output (PEFT <c>lora_bias</c>).</summary>
    /// <value>The default is <see langword="false"/>.</value>
    public bool LoraBias { get; set; }

    /// <summary>Gets or sets how new adapters are initialised (PEFT <c>init_lora_weights</c>).</summary>
    /// <value>The default is <see cref="LoraInitialization.Default"/> (A Kaiming-uniform with a = √5, B zero).</value>
    public LoraInitialization InitLoraWeights { get; set; }

    /// <summary>Gets or sets a value indicating whether the adapter uses DoRA (PEFT <c>use_dora</c>). Distill does not implement DoRA; <see langword="true"/> is rejected.</summary>
    /// <value>The default is <see langword="false"/>.</value>
    public bool UseDora { get; set; }

    /// <summary>Gets or sets the base model name or path recorded in <c>adapter_config.json</c>.</summary>
    /// <value>The default is <see langword="null"/>.</value>
    public string? BaseModelNameOrPath { get; set; }

    /// <summary>Gets or sets the base model revision recorded in <c>adapter_config.json</c>.</summary>
    /// <value>The default is <see langword="null"/>.</value>
    public string? Revision { get; set; }

    /// <summary>Gets or sets the PEFT task type.</summary>
    /// <value>The default is <c>CAUSAL_LM</c> (every Distill model is a causal LM; PEFT's own default is <see langword="null"/>).</value>
    public string? TaskType { get; set; } = LoraDefaults.TaskType;

    /// <summary>Gets or sets PEFT's <c>inference_mode</c> flag as written to <c>adapter_config.json</c>.</summary>
    /// <value>The default is <see langword="true"/> (what PEFT's <c>save_pretrained</c> writes).</value>
    public bool InferenceMode { get; set; } = true;

    /// <summary>Gets keys of <c>adapter_config.json</c> that Distill does not interpret, written back unchanged.</summary>
    internal Dictionary<string, JsonNode?> Extra { get; } = new(StringComparer.Ordinal);

    /// <summary>Gets the keys of the <c>adapter_config.json</c> this configuration was read from.</summary>
    internal HashSet<string> KeysRead { get; } = new(StringComparer.Ordinal);

    /// <summary>Gets the scaling of a layer with rank <paramref name="r"/> and alpha <paramref name="alpha"/>: <c>alpha/r</c>, or <c>alpha/√r</c> with <see cref="UseRslora"/>.</summary>
    /// <param name="r">The rank.</param>
    /// <param name="alpha">The alpha.</param>
    /// <returns>The scaling factor.</returns>
    public double ScalingFor(int r, double alpha) => UseRslora ? alpha / Math.Sqrt(r) : alpha / r;

    /// <summary>Creates a deep copy.</summary>
    /// <returns>An independent copy, including the uninterpreted keys.</returns>
    public LoraConfig Clone()
    {
        var c = new LoraConfig
        {
            R = R,
            LoraAlpha = LoraAlpha,
            LoraDropout = LoraDropout,
            TargetModules = TargetModules is null ? null : [.. TargetModules],
            TargetModulesPattern = TargetModulesPattern,
            ExcludeModules = ExcludeModules is null ? null : [.. ExcludeModules],
            ExcludeModulesPattern = ExcludeModulesPattern,
            FanInFanOut = FanInFanOut,
            Bias = Bias,
            UseRslora = UseRslora,
            ModulesToSave = ModulesToSave is null ? null : [.. ModulesToSave],
            LayersToTransform = LayersToTransform is null ? null : [.. LayersToTransform],
            LayersPattern = LayersPattern is null ? null : [.. LayersPattern],
            LoraBias = LoraBias,
            InitLoraWeights = InitLoraWeights,
            UseDora = UseDora,
            BaseModelNameOrPath = BaseModelNameOrPath,
            Revision = Revision,
            TaskType = TaskType,
            InferenceMode = InferenceMode,
        };
        foreach (var (k, v) in RankPattern)
        {
            c.RankPattern[k] = v;
        }

        foreach (var (k, v) in AlphaPattern)
        {
            c.AlphaPattern[k] = v;
        }

        foreach (var (k, v) in Extra)
        {
            c.Extra[k] = v?.DeepClone();
        }

        c.KeysRead.UnionWith(KeysRead);

        return c;
    }
}

/// <summary>Which base-model biases a LoRA adapter trains and saves (PEFT's <c>bias</c>).</summary>
public enum LoraBiasMode
{
    /// <summary><c>"none"</c>: no bias is trained.</summary>
    None,

    /// <summary><c>"all"</c>: every parameter named <c>bias</c> in the model is trained and saved.</summary>
    All,

    /// <summary><c>"lora_only"</c>: the biases of the adapted layers are trained and saved.</summary>
    LoraOnly,
}

/// <summary>How a new adapter is initialised (PEFT's <c>init_lora_weights</c>).</summary>
public enum LoraInitialization
{
    /// <summary><see langword="true"/>: A Kaiming-uniform (a = √5, i.e. U(−1/√in, 1/√in)), B zero; the adapter starts as the identity.</summary>
    Default,

    /// <summary><c>"gaussian"</c>: A ~ N(0, (1/r)²), B zero.</summary>
    Gaussian,

    /// <summary><see langword="false"/>: A and B both keep nn.Linear's random initialisation (the adapter does not start as the identity; for tests).</summary>
    Random,
}

/// <summary>Defaults of <see cref="LoraConfig"/>.</summary>
internal static class LoraDefaults
{
    public const int R = 8;
    public const double LoraAlpha = 8;
    public const string TaskType = "CAUSAL_LM";
}
