namespace Distill.Models;

/// <summary>Qwen2 / Qwen2.5 configuration (<c>model_type: qwen2</c>): bias on q/k/v only, optional sliding window.</summary>
public sealed class Qwen2Config : RopeDecoderConfig
{
    /// <summary>Gets or sets a value indicating whether sliding-window attention is on (<c>use_sliding_window</c>).</summary>
    /// <value>The default is <see langword="false"/>.</value>
    public bool UseSlidingWindow { get; set; }

    /// <summary>Gets or sets the sliding-window size (<c>sliding_window</c>), used only when <see cref="UseSlidingWindow"/> is set.</summary>
    /// <value>The default is <see langword="null"/>.</value>
    public int? SlidingWindow { get; set; }

    /// <summary>Gets or sets the number of bottom layers that keep full attention (<c>max_window_layers</c>).</summary>
    /// <value>The default is 28.</value>
    public int MaxWindowLayers { get; set; } = 28;

    internal override bool QkvBias => true;

    internal override bool OutputBias => false;

    internal override bool MlpBias => false;

    // transformers: layer i slides iff use_sliding_window and i >= max_window_layers.
    internal override int? SlidingWindowFor(int layer) => UseSlidingWindow && SlidingWindow is { } w && layer >= MaxWindowLayers ? w : null;
}
