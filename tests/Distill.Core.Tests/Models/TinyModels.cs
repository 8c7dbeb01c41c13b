using Distill.Models;

namespace Distill.Core.Tests.Models;

/// <summary>Tiny configs of each supported architecture, for fast tests.</summary>
internal static class TinyModels
{
    internal static string FixturePath(params string[] parts) =>
        Path.Combine([AppContext.BaseDirectory, "fixtures", .. parts]);

    internal static Gpt2Config Gpt2() => new()
    {
        ModelType = "gpt2",
        VocabSize = 61,
        HiddenSize = 32,
        NumHiddenLayers = 2,
        NumAttentionHeads = 4,
        MaxPositionEmbeddings = 64,
        EosTokenIds = [60],
    };

    internal static LlamaConfig Llama() => new()
    {
        ModelType = "llama",
        VocabSize = 67,
        HiddenSize = 32,
        NumHiddenLayers = 2,
        NumAttentionHeads = 4,
        NumKeyValueHeads = 2,
        MaxPositionEmbeddings = 64,
        IntermediateSize = 48,
        EosTokenIds = [2],
    };

    internal static LlamaConfig Mistral() => new()
    {
        ModelType = "mistral",
        VocabSize = 59,
        HiddenSize = 32,
        NumHiddenLayers = 2,
        NumAttentionHeads = 4,
        NumKeyValueHeads = 1,
        HeadDim = 12,
        MaxPositionEmbeddings = 64,
        IntermediateSize = 40,
        SlidingWindow = 5,
        EosTokenIds = [2],
    };

    internal static Qwen2Config Qwen2() => new()
    {
        ModelType = "qwen2",
        VocabSize = 71,
        HiddenSize = 32,
        NumHiddenLayers = 2,
        NumAttentionHeads = 4,
        NumKeyValueHeads = 2,
        MaxPositionEmbeddings = 64,
        IntermediateSize = 56,
        TieWordEmbeddings = true,
        RopeTheta = 1e6,
        EosTokenIds = [70],
    };

    internal static CausalLMConfig ByName(string name) => name switch
    {
        "gpt2" => Gpt2(),
        "llama" => Llama(),
        "mistral" => Mistral(),
        "qwen2" => Qwen2(),
        _ => throw new ArgumentException(name),
    };

    /// <summary>FromConfig init uses σ = initializer_range (0.02), whose logits are ~0; tests want O(1) logits, so scale up.</summary>
    internal static CausalLM Create(string name, long seed = 7, TorchSharp.torch.ScalarType? dtype = null)
    {
        var config = ByName(name);
        switch (config)
        {
            case Gpt2Config g:
                g.InitializerRange = 0.3;
                break;
            case RopeDecoderConfig d:
                d.InitializerRange = 0.3;
                break;
        }

        return AutoCausalLM.FromConfig(config, seed, dtype);
    }
}
