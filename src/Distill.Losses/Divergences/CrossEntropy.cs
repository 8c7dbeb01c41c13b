using static TorchSharp.torch;

namespace Distill.Losses;

/// <summary>Token cross-entropy of the student on aligned labels (DSKD <c>compute_cross_entropy_loss</c>, HF causal-LM CE).</summary>
public static class CrossEntropy
{
    /// <summary>−log softmax(logits)[label] per token, float32; 0 where the label is −100.</summary>
    /// <param name="logits">[..., V]; float32 or bfloat16 (log-softmax in float32).</param>
    /// <param name="labels">[...] int64, aligned with <paramref name="logits"/>; −100 = ignored.</param>
    /// <returns>[...] float32 (float64 for float64 input).</returns>
    public static Tensor PerToken(Tensor logits, Tensor labels)
    {
        ArgumentNullException.ThrowIfNull(logits);
        ArgumentNullException.ThrowIfNull(labels);
        using var scope = NewDisposeScope();
        var logProbs = LossMath.ToCompute(logits).log_softmax(-1);
        var nll = -logProbs.gather(-1, LossMath.SafeTargets(labels).unsqueeze(-1)).squeeze(-1);
        return nll.masked_fill(labels.eq(TorchScalars.Constant(DistillationBatch.IgnoreIndex)), TorchScalars.Constant(0.0)).MoveToOuterDisposeScope();
    }
}
