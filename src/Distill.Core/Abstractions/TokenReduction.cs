using static TorchSharp.torch;

namespace Distill;

/// <summary>Masking and reduction helpers shared by objectives and the trainer.</summary>
public static class TokenReduction
{
    /// <summary>The boolean mask of scored positions: <c>labels ≠ −100</c>.</summary>
    /// <param name="labels">[B, T] int64.</param>
    /// <returns>[B, T] bool.</returns>
    public static Tensor ValidMask(Tensor labels)
    {
        ArgumentNullException.ThrowIfNull(labels);
        return labels.ne(TorchScalars.Constant(DistillationBatch.IgnoreIndex));
    }

    /// <summary>Sums a per-token loss over scored positions. Masked positions contribute exactly 0, even if they hold NaN or inf.</summary>
    /// <param name="perToken">[B, T] (any float dtype; summed in float32).</param>
    /// <param name="mask">[B, T] bool, true where scored.</param>
    /// <returns>A float32 scalar.</returns>
    public static Tensor MaskedSum(Tensor perToken, Tensor mask)
    {
        ArgumentNullException.ThrowIfNull(perToken);
        ArgumentNullException.ThrowIfNull(mask);
        using var scope = NewDisposeScope();
        // where(), not multiply: 0 * NaN would still be NaN at an ignored position.
        var zero = zeros(1, dtype: ScalarType.Float32, device: perToken.device);
        return where(mask, perToken.to(ScalarType.Float32), zero).sum().MoveToOuterDisposeScope();
    }

    /// <summary>Divides a summed loss by a token count, treating 0 as 1 so an all-masked window yields 0, not NaN.</summary>
    public static Tensor Normalize(Tensor lossSum, long tokenCount)
    {
        ArgumentNullException.ThrowIfNull(lossSum);
        return lossSum.Div(Math.Max(tokenCount, 1)); // ClampMin(1): an all-masked window yields 0, not NaN
    }
}
