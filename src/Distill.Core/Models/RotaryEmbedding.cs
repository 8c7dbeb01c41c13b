using TorchSharp;
using static TorchSharp.torch;

namespace Distill.Models;

/// <summary>
/// Rotate-half RoPE as transformers computes it: <c>inv_freq[i] = 1 / θ^(2i / d)</c> (scaled for <c>linear</c> and <c>llama3</c>),
/// <c>freqs = positions ⊗ inv_freq</c> in float32, <c>emb = cat(freqs, freqs)</c>, cos/sin cast to the model dtype, and
/// <c>x·cos + rotate_half(x)·sin</c> with <c>rotate_half([a, b]) = [−b, a]</c>.
/// </summary>
internal sealed class RotaryEmbedding
{
    private readonly float[] invFreq;

    internal RotaryEmbedding(RopeDecoderConfig config)
    {
        var dim = config.EffectiveHeadDim;
        var f = new double[dim / 2];
        for (var i = 0; i < f.Length; i++)
        {
            // transformers: 1.0 / (base ** (arange(0, dim, 2).float() / dim)), in float32.
            f[i] = 1.0 / Math.Pow(config.RopeTheta, (float)(2 * i) / dim);
        }

        if (config.RopeScaling is { } s)
        {
            f = s.RopeType switch
            {
                "linear" => [.. f.Select(x => x / s.Factor)],
                "llama3" => Llama3(f, s),
                _ => f,
            };
        }

        invFreq = [.. f.Select(x => (float)x)];
    }

    /// <summary>Gets the inverse frequencies, [d / 2].</summary>
    internal IReadOnlyList<float> InverseFrequencies => invFreq;

    /// <summary>Computes cos and sin for positions [B, T]: each [B, T, d] in <paramref name="dtype"/>.</summary>
    internal (Tensor Cos, Tensor Sin) Compute(Tensor positions, ScalarType dtype)
    {
        var inv = torch.tensor(invFreq, device: positions.device); // [d/2]
        var freqs = positions.to_type(ScalarType.Float32).unsqueeze(-1) * inv; // [B, T, d/2]
        var emb = torch.cat([freqs, freqs], -1);
        return (emb.cos().to_type(dtype), emb.sin().to_type(dtype));
    }

    /// <summary>Applies the rotation to x [B, H, T, d] with cos/sin [B, T, d].</summary>
    internal static Tensor Apply(Tensor x, Tensor cos, Tensor sin)
    {
        var c = cos.unsqueeze(1);
        var s = sin.unsqueeze(1);
        var half = x.shape[^1] / 2;
        var rotated = torch.cat([x.narrow(-1, half, half).neg(), x.narrow(-1, 0, half)], -1);
        return (x * c).Add(rotated * s);
    }

    // Llama 3.1: long wavelengths divided by factor, short kept, the band between smoothly interpolated.
    private static double[] Llama3(double[] f, RopeScaling s)
    {
        var lowWavelen = s.OriginalMaxPositionEmbeddings / s.LowFreqFactor;
        var highWavelen = s.OriginalMaxPositionEmbeddings / s.HighFreqFactor;
        var result = new double[f.Length];
        for (var i = 0; i < f.Length; i++)
        {
            var wavelen = 2 * Math.PI / f[i];
            var scaled = wavelen > lowWavelen ? f[i] / s.Factor : f[i];
            var medium = !(wavelen < highWavelen) && !(wavelen > lowWavelen);
            if (medium)
            {
                var smooth = ((s.OriginalMaxPositionEmbeddings / wavelen) - s.LowFreqFactor) / (s.HighFreqFactor - s.LowFreqFactor);
                scaled = ((1 - smooth) * scaled / s.Factor) + (smooth * scaled);
            }

            result[i] = scaled;
        }

        return result;
    }
}
