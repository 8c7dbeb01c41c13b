using static TorchSharp.torch;

namespace Distill.Losses;

/// <summary>Builds the <see cref="ObjectiveResult"/>s of this package: everything on the device, moved out of the objective's dispose scope.</summary>
internal static class ObjectiveResults
{
    /// <summary>A result with detached metrics; every tensor is moved to the scope enclosing the caller's.</summary>
    /// <param name="lossSum">The loss (with gradient).</param>
    /// <param name="normalizer">Float32 scalar the trainer divides the window's loss by (summed over the window).</param>
    /// <param name="scoredTokens">Int64 scalar: the scored tokens of the micro-batch.</param>
    /// <param name="metrics">Named scalars (detached here).</param>
    internal static ObjectiveResult Create(Tensor lossSum, Tensor normalizer, Tensor scoredTokens, IReadOnlyDictionary<string, Tensor> metrics)
    {
        var dict = new Dictionary<string, Tensor>(metrics.Count, StringComparer.Ordinal);
        foreach (var (name, value) in metrics)
        {
            dict[name] = value.detach().to(ScalarType.Float32).MoveToOuterDisposeScope();
        }

        return new ObjectiveResult(
            lossSum.MoveToOuterDisposeScope(),
            normalizer.to(ScalarType.Float32).MoveToOuterDisposeScope(),
            scoredTokens.to(ScalarType.Int64).MoveToOuterDisposeScope(),
            dict);
    }
}
