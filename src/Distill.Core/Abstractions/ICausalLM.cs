using static TorchSharp.torch;

namespace Distill;

/// <summary>
/// A decoder-only language model as Distill sees it: HF-compatible module and parameter names, forward over ids and
/// mask, access to the lm_head and the input embedding table (needed by fused kernels, DSKD and CMA).
/// </summary>
/// <remarks>
/// Implementations derive from <c>nn.Module&lt;CausalLMInput, CausalLMOutput&gt;</c>; <see cref="Module"/> returns that
/// module (parameters, train/eval, state dict). Not thread-safe: one forward at a time.
/// </remarks>
public interface ICausalLM
{
    /// <summary>Gets the model configuration (parsed from <c>config.json</c>).</summary>
    CausalLMConfig Config { get; }

    /// <summary>Gets the underlying TorchSharp module.</summary>
    nn.Module Module { get; }

    /// <summary>Gets the lm_head weight, [V, H] (the tied embedding matrix for tied models).</summary>
    Tensor LmHeadWeight { get; }

    /// <summary>Gets the lm_head bias, [V], or <see langword="null"/> (none of the supported families has one).</summary>
    Tensor? LmHeadBias { get; }

    /// <summary>Gets the input embedding table, [V, H].</summary>
    Tensor EmbeddingWeight { get; }

    /// <summary>Runs the model.</summary>
    /// <param name="input">Ids, mask, positions, cache and what to return.</param>
    /// <returns>Logits and/or last hidden states (after the final norm), and the updated cache.</returns>
    CausalLMOutput Forward(CausalLMInput input);
}

/// <summary>Input of <see cref="ICausalLM.Forward"/>.</summary>
public sealed class CausalLMInput
{
    /// <summary>Gets the input ids, [B, T] int64.</summary>
    public required Tensor InputIds { get; init; }

    /// <summary>Gets the attention mask, [B, T_past + T] int64 (1 = attend); <see langword="null"/> = all ones.</summary>
    public Tensor? AttentionMask { get; init; }

    /// <summary>Gets explicit position ids, [B, T] int64; <see langword="null"/> = arange from the cache length (HF forward behaviour).</summary>
    public Tensor? PositionIds { get; init; }

    /// <summary>Gets the key/value cache to extend, or <see langword="null"/> for no caching.</summary>
    public IKeyValueCache? Cache { get; init; }

    /// <summary>Gets a value indicating whether to apply the lm_head and return logits (false: hidden states only, for fused kernels).</summary>
    /// <value>The default is <see langword="true"/>.</value>
    public bool ComputeLogits { get; init; } = true;

    /// <summary>Gets a value indicating whether to return the last hidden states (after the final norm).</summary>
    public bool ReturnHiddenStates { get; init; }
}

/// <summary>Output of <see cref="ICausalLM.Forward"/>.</summary>
/// <param name="Logits">[B, T, V] in the model dtype, or <see langword="null"/> when not requested.</param>
/// <param name="HiddenStates">[B, T, H] after the final norm, or <see langword="null"/> when not requested.</param>
/// <param name="Cache">The cache passed in, extended with this step's keys and values.</param>
public sealed record CausalLMOutput(Tensor? Logits, Tensor? HiddenStates, IKeyValueCache? Cache);

/// <summary>A per-layer key/value cache for incremental decoding.</summary>
public interface IKeyValueCache : IDisposable
{
    /// <summary>Gets the number of cached positions.</summary>
    long Length { get; }
}
