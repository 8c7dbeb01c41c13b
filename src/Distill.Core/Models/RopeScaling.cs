namespace Distill.Models;

/// <summary>RoPE frequency scaling (<c>rope_scaling</c>, or the non-default part of transformers-v5 <c>rope_parameters</c>).</summary>
/// <remarks>Supported types: <c>default</c> (none), <c>linear</c> (positions divided by <see cref="Factor"/>) and <c>llama3</c>
/// (Llama 3.1 wavelength-dependent scaling).</remarks>
public sealed class RopeScaling
{
    /// <summary>Gets or sets the scaling type (<c>rope_type</c>, older <c>type</c>).</summary>
    /// <value>The default is <c>default</c>.</value>
    public string RopeType { get; set; } = "default";

    /// <summary>Gets or sets the scaling factor.</summary>
    /// <value>The default is 1.</value>
    public double Factor { get; set; } = 1.0;

    /// <summary>Gets or sets llama3's <c>low_freq_factor</c>.</summary>
    /// <value>The default is 1.</value>
    public double LowFreqFactor { get; set; } = 1.0;

    /// <summary>Gets or sets llama3's <c>high_freq_factor</c>.</summary>
    /// <value>The default is 4.</value>
    public double HighFreqFactor { get; set; } = 4.0;

    /// <summary>Gets or sets llama3's <c>original_max_position_embeddings</c>.</summary>
    /// <value>The default is 8192.</value>
    public int OriginalMaxPositionEmbeddings { get; set; } = 8192;
}
