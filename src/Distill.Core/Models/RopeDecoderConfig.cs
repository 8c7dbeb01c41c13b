namespace Distill.Models;

/// <summary>
/// Fields shared by the RoPE decoder families (Llama, Mistral, Qwen2): RMSNorm, rotate-half RoPE, grouped-query attention and a
/// gated MLP.
/// </summary>
public abstract class RopeDecoderConfig : CausalLMConfig
{
    /// <summary>Gets or sets the MLP inner width (<c>intermediate_size</c>).</summary>
    public required int IntermediateSize { get; set; }

    /// <summary>Gets or sets the number of key/value heads (<c>num_key_value_heads</c>); <see langword="null"/> = <see cref="CausalLMConfig.NumAttentionHeads"/>.</summary>
    /// <value>The default is <see langword="null"/>.</value>
    public int? NumKeyValueHeads { get; set; }

    /// <summary>Gets or sets the per-head width (<c>head_dim</c>); <see langword="null"/> = hidden size / heads.</summary>
    /// <value>The default is <see langword="null"/>.</value>
    public int? HeadDim { get; set; }

    /// <summary>Gets or sets the RMSNorm epsilon (<c>rms_norm_eps</c>).</summary>
    /// <value>The default is 1e-6.</value>
    public double RmsNormEps { get; set; } = 1e-6;

    /// <summary>Gets or sets the RoPE base θ (<c>rope_theta</c>, or v5 <c>rope_parameters.rope_theta</c>).</summary>
    /// <value>The default is 10000.</value>
    public double RopeTheta { get; set; } = 10000.0;

    /// <summary>Gets or sets the RoPE scaling, or <see langword="null"/> for none.</summary>
    /// <value>The default is <see langword="null"/>.</value>
    public RopeScaling? RopeScaling { get; set; }

    /// <summary>Gets or sets the MLP activation (<c>hidden_act</c>): <c>silu</c>, <c>gelu</c>, <c>gelu_pytorch_tanh</c>, <c>gelu_new</c>, <c>relu</c>.</summary>
    /// <value>The default is <c>silu</c>.</value>
    public string HiddenAct { get; set; } = "silu";

    /// <summary>Gets or sets the standard deviation of the random initialisation (<c>initializer_range</c>).</summary>
    /// <value>The default is 0.02.</value>
    public double InitializerRange { get; set; } = 0.02;

    /// <summary>Gets or sets the attention-probability dropout (<c>attention_dropout</c>), applied in training mode.</summary>
    /// <value>The default is 0.</value>
    public double AttentionDropout { get; set; }

    /// <summary>Gets the effective number of key/value heads.</summary>
    public int EffectiveNumKeyValueHeads => NumKeyValueHeads ?? NumAttentionHeads;

    /// <summary>Gets the effective per-head width.</summary>
    public int EffectiveHeadDim => HeadDim ?? (HiddenSize / NumAttentionHeads);

    /// <summary>Gets a value indicating whether q/k/v projections have a bias.</summary>
    internal abstract bool QkvBias { get; }

    /// <summary>Gets a value indicating whether o_proj has a bias.</summary>
    internal abstract bool OutputBias { get; }

    /// <summary>Gets a value indicating whether the MLP projections have a bias.</summary>
    internal abstract bool MlpBias { get; }

    /// <summary>Gets the sliding-window size layer <paramref name="layer"/> uses, or <see langword="null"/> for full causal attention.</summary>
    /// <param name="layer">The layer index.</param>
    /// <returns>The window W (a query at i sees keys j with i − W &lt; j ≤ i), or <see langword="null"/>.</returns>
    internal abstract int? SlidingWindowFor(int layer);
}
