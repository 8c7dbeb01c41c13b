using Distill.Data;
using Distill.Models;

namespace Distill.Samples;

/// <summary>The small GPT-2 shape every sample builds its random students (and trained teachers) from; compiled into each sample as a linked file.</summary>
internal static class SampleModels
{
    /// <summary>A GPT-2 config for <paramref name="tokenizer"/>: one attention head per 32 dimensions, the tokenizer's pad id as EOS and BOS.</summary>
    /// <param name="tokenizer">The tokenizer (its vocabulary size and pad id).</param>
    /// <param name="layers">Depth.</param>
    /// <param name="hidden">Width.</param>
    /// <param name="maxLength">Context length.</param>
    /// <returns>The config.</returns>
    public static Gpt2Config TinyGpt2(HfTokenizer tokenizer, int layers, int hidden, int maxLength) => new()
    {
        ModelType = "gpt2",
        VocabSize = tokenizer.VocabSize,
        HiddenSize = hidden,
        NumHiddenLayers = layers,
        NumAttentionHeads = Math.Max(1, hidden / 32),
        MaxPositionEmbeddings = maxLength,
        EosTokenIds = [TokenizedDataset.PadId(tokenizer)],
        BosTokenId = TokenizedDataset.PadId(tokenizer),
    };
}
