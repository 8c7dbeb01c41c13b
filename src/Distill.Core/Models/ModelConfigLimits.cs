namespace Distill.Models;

/// <summary>
/// The explicit plausibility limits <see cref="ModelConfigLoader"/> checks every size of a <c>config.json</c> against before
/// anything is allocated (each is well above the largest published model of the supported families).
/// </summary>
public static class ModelConfigLimits
{
    /// <summary>The largest <c>vocab_size</c> (2^22).</summary>
    public const int MaxVocabSize = 1 << 22;

    /// <summary>The largest <c>hidden_size</c> / <c>n_embd</c> and <c>head_dim</c> (2^17).</summary>
    public const int MaxHiddenSize = 1 << 17;

    /// <summary>The largest <c>intermediate_size</c> / <c>n_inner</c> (2^20).</summary>
    public const int MaxIntermediateSize = 1 << 20;

    /// <summary>The largest layer count (1024).</summary>
    public const int MaxLayers = 1024;

    /// <summary>The largest attention (and key/value) head count (1024).</summary>
    public const int MaxAttentionHeads = 1024;

    /// <summary>The largest <c>max_position_embeddings</c> / <c>n_positions</c> (2^26).</summary>
    public const int MaxPositionEmbeddings = 1 << 26;

    /// <summary>The largest normalisation epsilon (<c>rms_norm_eps</c>, <c>layer_norm_epsilon</c>): 1 (real models use 1e-6 to 1e-5).</summary>
    public const double MaxNormEpsilon = 1;

    /// <summary>The largest <c>rope_theta</c>: 10^8 (published models use 10^4 to 10^7).</summary>
    public const double MaxRopeTheta = 1e8;

    /// <summary>The largest parameter count the sizes may imply (10^13).</summary>
    public const double MaxParameters = 1e13;
}
