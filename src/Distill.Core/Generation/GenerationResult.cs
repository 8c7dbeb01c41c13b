using static TorchSharp.torch;

namespace Distill.Generation;

/// <summary>The output of <see cref="O:Distill.Generation.TextGenerator.Generate"/>. N is the number of decoding steps run (≤ MaxNewTokens; fewer when every row stopped early).</summary>
/// <remarks>Tensors are on the model's device and belong to the caller's dispose scope, if any; <see cref="Dispose"/> frees them.</remarks>
public sealed class GenerationResult : IDisposable
{
    internal GenerationResult(Tensor sequences, Tensor generatedIds, Tensor logProbs, long[] lengths, bool[] stopped)
    {
        Sequences = sequences;
        GeneratedIds = generatedIds;
        LogProbs = logProbs;
        Lengths = lengths;
        Stopped = stopped;
    }

    /// <summary>Gets prompt and generated ids, [B, P + N] int64 (the prompt keeps its left padding).</summary>
    public Tensor Sequences { get; }

    /// <summary>Gets the generated ids, [B, N] int64; positions after a row's EOS / stop sequence hold the pad id.</summary>
    public Tensor GeneratedIds { get; }

    /// <summary>
    /// Gets, [B, N] float32, the log-probability of each chosen token under the model's own next-token distribution:
    /// <c>log_softmax(logits)</c> at temperature 1 with no top-k/top-p processing (what on-policy distillation and SeqKD
    /// need), whatever sampling settings chose the token. 0 at padded positions after a row finished.
    /// </summary>
    public Tensor LogProbs { get; }

    /// <summary>Gets the number of generated tokens per row (including the EOS token; excluding padding).</summary>
    public IReadOnlyList<long> Lengths { get; }

    /// <summary>Gets, per row, whether it stopped on EOS or a stop sequence (false: it ran to MaxNewTokens).</summary>
    public IReadOnlyList<bool> Stopped { get; }

    /// <inheritdoc />
    public void Dispose()
    {
        Sequences.Dispose();
        GeneratedIds.Dispose();
        LogProbs.Dispose();
    }
}
