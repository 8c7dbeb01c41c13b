namespace Distill.Models;

/// <summary>
/// Llama-family configuration: Llama 2/3 (incl. <c>rope_scaling</c> type llama3), TinyLlama (<c>model_type: llama</c>) and
/// Mistral (<c>model_type: mistral</c>, sliding window when <see cref="SlidingWindow"/> is set).
/// </summary>
public sealed class LlamaConfig : RopeDecoderConfig
{
    /// <summary>Gets or sets a value indicating whether q/k/v/o projections have a bias (<c>attention_bias</c>).</summary>
    /// <value>The default is <see langword="false"/>.</value>
    public bool AttentionBias { get; set; }

    /// <summary>Gets or sets a value indicating whether the MLP projections have a bias (<c>mlp_bias</c>).</summary>
    /// <value>The default is <see langword="false"/>.</value>
    public bool MlpBiasEnabled { get; set; }

    /// <summary>Gets or sets the sliding-window size (<c>sliding_window</c>, Mistral); <see langword="null"/> = full attention.</summary>
    /// <value>The default is <see langword="null"/>.</value>
    public int? SlidingWindow { get; set; }

    internal override bool QkvBias => AttentionBias;

    internal override bool OutputBias => AttentionBias;

    internal override bool MlpBias => MlpBiasEnabled;

    internal override int? SlidingWindowFor(int layer) => SlidingWindow;
}
