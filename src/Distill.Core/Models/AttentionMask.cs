using TorchSharp;
using static TorchSharp.torch;

namespace Distill.Models;

/// <summary>The attention bias passed to scaled_dot_product_attention: an additive mask, or "causal", or nothing.</summary>
/// <param name="Additive">[B, 1, T, S] in the model dtype (0 = attend, finfo.min = masked), or <see langword="null"/>.</param>
/// <param name="IsCausal">Whether to let SDPA apply a plain causal mask (only when T = S and nothing else is masked).</param>
internal sealed record AttentionBias(Tensor? Additive, bool IsCausal);

/// <summary>Builds attention masks as transformers does: causal, padding and sliding window, masked with finfo(dtype).min.</summary>
internal static class AttentionMask
{
    /// <summary>Builds the attention bias for one forward.</summary>
    /// <param name="mask">[B, S] 1 = attend (S = past + T), or <see langword="null"/> for all ones.</param>
    /// <param name="batch">B.</param>
    /// <param name="length">T, the new positions.</param>
    /// <param name="past">The number of cached positions.</param>
    /// <param name="window">Sliding window W (query i sees keys j with i − W &lt; j ≤ i), or <see langword="null"/>.</param>
    /// <param name="dtype">The model dtype.</param>
    /// <param name="device">The device.</param>
    /// <returns>The bias; fully masked rows (left padding) stay finite, so they never produce NaN.</returns>
    internal static AttentionBias Build(Tensor? mask, long batch, long length, long past, int? window, ScalarType dtype, Device device)
    {
        var total = past + length;
        if (mask is not null && (mask.shape.Length != 2 || mask.shape[0] != batch || mask.shape[1] != total))
        {
            throw new ArgumentException($"Attention mask has shape [{string.Join(", ", mask.shape)}]; expected [B, past + T] = [{batch}, {total}].", nameof(mask));
        }

        var padded = mask is not null && !mask.eq(TorchScalars.Constant(1)).all().item<bool>();
        var windowed = window is { } w && total > w;
        if (!padded && !windowed && past == 0)
        {
            return new AttentionBias(null, IsCausal: length > 1);
        }

        if (!padded && !windowed && length == 1)
        {
            return new AttentionBias(null, IsCausal: false);
        }

        var q = TorchScalars.Arange(past, total, dtype: ScalarType.Int64, device: device).unsqueeze(1); // [T, 1]
        var k = TorchScalars.Arange(0, total, dtype: ScalarType.Int64, device: device).unsqueeze(0); // [1, S]
        var allowed = k.le(q);
        if (windowed)
        {
            allowed = allowed.logical_and(k.gt(q.Sub(window!.Value)));
        }

        var allowed4 = allowed.unsqueeze(0).unsqueeze(0); // [1, 1, T, S]
        if (padded)
        {
            allowed4 = allowed4.logical_and(mask!.to(device).ne(TorchScalars.Constant(0)).unsqueeze(1).unsqueeze(1)); // [B, 1, T, S]
        }
        else
        {
            allowed4 = allowed4.expand(batch, 1, length, total);
        }

        var bias = torch.zeros(allowed4.shape, dtype, device).MaskedFill(allowed4.logical_not(), torch.finfo(dtype).min);
        return new AttentionBias(bias, false);
    }
}
