namespace Distill.Models;

/// <summary>GPT-2 configuration (<c>model_type: gpt2</c>), with transformers' <c>GPT2Config</c> defaults.</summary>
/// <remarks>
/// <see cref="CausalLMConfig.HiddenSize"/> is <c>n_embd</c>, <see cref="CausalLMConfig.NumHiddenLayers"/> <c>n_layer</c>,
/// <see cref="CausalLMConfig.NumAttentionHeads"/> <c>n_head</c> and <see cref="CausalLMConfig.MaxPositionEmbeddings"/>
/// <c>n_positions</c>. Word embeddings are tied unless the config says otherwise.
/// </remarks>
public sealed class Gpt2Config : CausalLMConfig
{
    /// <summary>Initialises a GPT-2 config with <see cref="CausalLMConfig.TieWordEmbeddings"/> = true (the transformers default).</summary>
    public Gpt2Config() => TieWordEmbeddings = true;

    /// <summary>Gets or sets the MLP inner width (<c>n_inner</c>); <see langword="null"/> means 4 × hidden size.</summary>
    /// <value>The default is <see langword="null"/>.</value>
    public int? InnerSize { get; set; }

    /// <summary>Gets the effective MLP inner width.</summary>
    public int EffectiveInnerSize => InnerSize ?? (4 * HiddenSize);

    /// <summary>Gets or sets the LayerNorm epsilon (<c>layer_norm_epsilon</c>).</summary>
    /// <value>The default is 1e-5.</value>
    public double LayerNormEpsilon { get; set; } = 1e-5;

    /// <summary>Gets or sets the standard deviation of the random initialisation (<c>initializer_range</c>).</summary>
    /// <value>The default is 0.02.</value>
    public double InitializerRange { get; set; } = 0.02;

    /// <summary>Gets or sets the MLP activation (<c>activation_function</c>): <c>gelu_new</c>, <c>gelu_pytorch_tanh</c>, <c>gelu</c>, <c>relu</c>, <c>silu</c>.</summary>
    /// <value>The default is <c>gelu_new</c>.</value>
    public string ActivationFunction { get; set; } = "gelu_new";

    /// <summary>Gets or sets a value indicating whether attention scores are divided by √head_dim (<c>scale_attn_weights</c>).</summary>
    /// <value>The default is <see langword="true"/>.</value>
    public bool ScaleAttentionWeights { get; set; } = true;

    /// <summary>Gets or sets a value indicating whether layer i's scores are additionally divided by i + 1 (<c>scale_attn_by_inverse_layer_idx</c>).</summary>
    /// <value>The default is <see langword="false"/>.</value>
    public bool ScaleAttentionByInverseLayerIndex { get; set; }

    /// <summary>Gets or sets the residual dropout probability (<c>resid_pdrop</c>), applied in training mode.</summary>
    /// <value>The default is 0.1.</value>
    public double ResidualDropout { get; set; } = 0.1;

    /// <summary>Gets or sets the embedding dropout probability (<c>embd_pdrop</c>), applied in training mode.</summary>
    /// <value>The default is 0.1.</value>
    public double EmbeddingDropout { get; set; } = 0.1;

    /// <summary>Gets or sets the attention-probability dropout (<c>attn_pdrop</c>), applied in training mode.</summary>
    /// <value>The default is 0.1.</value>
    public double AttentionDropout { get; set; } = 0.1;
}
