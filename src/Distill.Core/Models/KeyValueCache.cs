using TorchSharp;
using static TorchSharp.torch;

namespace Distill.Models;

/// <summary>
/// The key/value cache of the Distill models: per layer, keys and values [B, KV heads, S, head_dim] (before GQA
/// repetition), grown by concatenation on each forward.
/// </summary>
/// <remarks>
/// The cached tensors live outside every dispose scope and are owned by the cache: replaced tensors are disposed at once,
/// the rest on <see cref="Dispose"/>. Positions are indexes into the cache, so a batch keeps its left padding and its
/// attention mask must cover cached + new positions. Not thread-safe.
/// </remarks>
internal sealed class KeyValueCache : IKeyValueCache
{
    private readonly Tensor?[] keys;
    private readonly Tensor?[] values;
    private bool disposed;

    /// <summary>Creates an empty cache.</summary>
    /// <param name="numLayers">The number of layers of the model it serves.</param>
    public KeyValueCache(int numLayers)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(numLayers);
        keys = new Tensor?[numLayers];
        values = new Tensor?[numLayers];
    }

    /// <summary>Gets the number of layers.</summary>
    public int NumLayers => keys.Length;

    /// <inheritdoc />
    public long Length => keys[0] is { } k ? k.shape[2] : 0;

    /// <summary>Gets the cached keys of a layer, [B, KV heads, S, head_dim], or <see langword="null"/> before the first forward.</summary>
    /// <param name="layer">The layer index.</param>
    /// <returns>The tensor (owned by the cache).</returns>
    public Tensor? Keys(int layer) => keys[layer];

    /// <summary>Gets the cached values of a layer, [B, KV heads, S, head_dim], or <see langword="null"/> before the first forward.</summary>
    /// <param name="layer">The layer index.</param>
    /// <returns>The tensor (owned by the cache).</returns>
    public Tensor? Values(int layer) => values[layer];

    /// <summary>Appends this step's keys and values of a layer and returns the full ones.</summary>
    /// <param name="layer">The layer index.</param>
    /// <param name="key">[B, KV heads, T, head_dim].</param>
    /// <param name="value">[B, KV heads, T, head_dim].</param>
    /// <returns>Keys and values [B, KV heads, S + T, head_dim], owned by the cache (aliases are returned into the caller's scope).</returns>
    internal (Tensor Key, Tensor Value) Update(int layer, Tensor key, Tensor value)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        keys[layer] = Append(keys[layer], key);
        values[layer] = Append(values[layer], value);
        return (keys[layer]!.alias(), values[layer]!.alias());
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (disposed)
        {
            return;
        }

        disposed = true;
        for (var i = 0; i < keys.Length; i++)
        {
            keys[i]?.Dispose();
            values[i]?.Dispose();
            keys[i] = values[i] = null;
        }
    }

    private static Tensor Append(Tensor? previous, Tensor next)
    {
        // The cache never takes part in backprop through earlier steps: detach, own outside the dispose scopes.
        var result = previous is null ? next.detach().clone() : torch.cat([previous, next.detach()], 2);
        result.DetachFromDisposeScope();
        previous?.Dispose();
        return result;
    }
}
