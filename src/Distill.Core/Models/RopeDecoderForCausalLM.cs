using TorchSharp.Utils;
using TorchSharp;
using static TorchSharp.torch;

namespace Distill.Models;

/// <summary>
/// Base of the RoPE decoder LMs (Llama, Mistral, Qwen2): <c>model.*</c> body plus <c>lm_head</c> (tied to
/// <c>model.embed_tokens.weight</c> when <see cref="CausalLMConfig.TieWordEmbeddings"/>).
/// </summary>
public abstract class RopeDecoderForCausalLM : CausalLM
{
    private readonly RopeDecoderModel model;
    [ComponentName(Name = "lm_head")]
    private readonly LinearProjection lmHead;

    private protected RopeDecoderForCausalLM(string name, RopeDecoderConfig config, ScalarType dtype, Device device)
        : base(name, config)
    {
        model = new RopeDecoderModel(config, dtype, device);
        lmHead = config.TieWordEmbeddings
            ? LinearProjection.Tied(() => model.EmbedTokens.Weight, config.HiddenSize, config.VocabSize)
            : ModelHelpers.Linear(config.HiddenSize, config.VocabSize, false, dtype, device);
        RegisterComponents();
        FreezeCheckpointKeys();
    }

    /// <summary>Gets the decoder configuration.</summary>
    public RopeDecoderConfig DecoderConfig => (RopeDecoderConfig)Config;

    /// <inheritdoc />
    public override LinearProjection LmHead => lmHead;

    /// <inheritdoc />
    public override Tensor EmbeddingWeight => model.EmbedTokens.Weight;

    /// <summary>Gets the RoPE inverse frequencies [head_dim / 2] (after scaling), for tests and diagnostics.</summary>
    internal IReadOnlyList<float> RopeInverseFrequencies => model.Rope.InverseFrequencies;

    /// <inheritdoc />
    private protected override Tensor ForwardHidden(Tensor ids, Tensor? mask, Tensor positions, long past, KeyValueCache? cache) =>
        model.Forward(ids, mask, positions, past, cache);

    /// <inheritdoc />
    protected internal override string? MapCheckpointKey(string name) =>
        name.EndsWith(".rotary_emb.inv_freq", StringComparison.Ordinal) ? null : base.MapCheckpointKey(name); // old checkpoints saved the RoPE buffer

    /// <inheritdoc />
    protected internal override void InitializeWeights(Generator generator)
    {
        var c = DecoderConfig;
        using var noGrad = torch.no_grad();
        foreach (var (name, p) in named_parameters())
        {
            if (name.EndsWith("norm.weight", StringComparison.Ordinal))
            {
                p.fill_(TorchScalars.Constant(1.0));
            }
            else if (name.EndsWith(".bias", StringComparison.Ordinal))
            {
                p.zero_();
            }
            else
            {
                FillNormal(p, c.InitializerRange, generator);
                if (name == "model.embed_tokens.weight" && c.PadTokenId is { } pad && pad >= 0 && pad < c.VocabSize)
                {
                    p[pad].zero_(); // nn.Embedding(padding_idx=pad_token_id): transformers zeroes that row
                }
            }
        }
    }
}

/// <summary>Llama 2/3, TinyLlama and Mistral (transformers' <c>LlamaForCausalLM</c> / <c>MistralForCausalLM</c>).</summary>
public sealed class LlamaForCausalLM : RopeDecoderForCausalLM
{
    internal LlamaForCausalLM(LlamaConfig config, ScalarType dtype, Device device)
        : base(nameof(LlamaForCausalLM), config, dtype, device)
    {
    }
}

/// <summary>Qwen2 / Qwen2.5 (transformers' <c>Qwen2ForCausalLM</c>): q/k/v bias, optional sliding window.</summary>
public sealed class Qwen2ForCausalLM : RopeDecoderForCausalLM
{
    internal Qwen2ForCausalLM(Qwen2Config config, ScalarType dtype, Device device)
        : base(nameof(Qwen2ForCausalLM), config, dtype, device)
    {
    }
}
