using TorchSharp.Utils;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Distill.Models;

/// <summary>
/// The body shared by Llama, Mistral and Qwen2 (<c>model.*</c>): <c>embed_tokens</c>, <c>layers.{i}</c> (input_layernorm,
/// self_attn.{q,k,v,o}_proj, post_attention_layernorm, mlp.{gate,up,down}_proj) and the final <c>norm</c>.
/// </summary>
internal sealed class RopeDecoderModel : nn.Module
{
    private readonly RopeDecoderConfig config;
    [ComponentName(Name = "embed_tokens")]
    private readonly TokenEmbedding embedTokens;
    private readonly ModuleList<RopeDecoderLayer> layers;
    private readonly RmsNorm norm;
    private readonly RotaryEmbedding rope;

    internal RopeDecoderModel(RopeDecoderConfig config, ScalarType dtype, Device device)
        : base(nameof(RopeDecoderModel))
    {
        this.config = config;
        embedTokens = new TokenEmbedding(config.VocabSize, config.HiddenSize, dtype, device);
        layers = new ModuleList<RopeDecoderLayer>([.. Enumerable.Range(0, config.NumHiddenLayers).Select(i => new RopeDecoderLayer(config, i, dtype, device))]);
        norm = new RmsNorm(config.HiddenSize, config.RmsNormEps, dtype, device);
        rope = new RotaryEmbedding(config);
        RegisterComponents();
    }

    internal TokenEmbedding EmbedTokens => embedTokens;

    internal RotaryEmbedding Rope => rope;

    internal Tensor Forward(Tensor ids, Tensor? mask, Tensor positions, long past, KeyValueCache? cache)
    {
        var x = embedTokens.forward(ids);
        var (cos, sin) = rope.Compute(positions, x.dtype);
        var biases = new Dictionary<int, AttentionBias>();
        for (var i = 0; i < layers.Count; i++)
        {
            var window = config.SlidingWindowFor(i) ?? -1;
            if (!biases.TryGetValue(window, out var bias))
            {
                biases[window] = bias = AttentionMask.Build(mask, ids.shape[0], ids.shape[1], past, window < 0 ? null : window, x.dtype, x.device);
            }

            x = layers[i].Forward(x, cos, sin, bias, cache);
        }

        return norm.forward(x);
    }
}

/// <summary>One decoder layer (<c>model.layers.{i}</c>).</summary>
internal sealed class RopeDecoderLayer : nn.Module
{
    // Declaration order = registration order = transformers' state-dict order.
    [ComponentName(Name = "self_attn")]
    private readonly RopeAttention selfAttn;
    private readonly GatedMlp mlp;
    [ComponentName(Name = "input_layernorm")]
    private readonly RmsNorm inputLayernorm;
    [ComponentName(Name = "post_attention_layernorm")]
    private readonly RmsNorm postAttentionLayernorm;

    internal RopeDecoderLayer(RopeDecoderConfig config, int layer, ScalarType dtype, Device device)
        : base(nameof(RopeDecoderLayer))
    {
        inputLayernorm = new RmsNorm(config.HiddenSize, config.RmsNormEps, dtype, device);
        selfAttn = new RopeAttention(config, layer, dtype, device);
        postAttentionLayernorm = new RmsNorm(config.HiddenSize, config.RmsNormEps, dtype, device);
        mlp = new GatedMlp(config, dtype, device);
        RegisterComponents();
    }

    internal Tensor Forward(Tensor x, Tensor cos, Tensor sin, AttentionBias bias, KeyValueCache? cache)
    {
        x = x.Add(selfAttn.Forward(inputLayernorm.forward(x), cos, sin, bias, cache, training));
        return x.Add(mlp.Forward(postAttentionLayernorm.forward(x)));
    }
}

/// <summary>Grouped-query attention with RoPE (<c>self_attn.{q,k,v,o}_proj</c>); query head h uses KV head h / (H / KV).</summary>
internal sealed class RopeAttention : nn.Module
{
    private readonly RopeDecoderConfig config;
    private readonly int layer;
    [ComponentName(Name = "q_proj")]
    private readonly LinearProjection qProj;
    [ComponentName(Name = "k_proj")]
    private readonly LinearProjection kProj;
    [ComponentName(Name = "v_proj")]
    private readonly LinearProjection vProj;
    [ComponentName(Name = "o_proj")]
    private readonly LinearProjection oProj;

    internal RopeAttention(RopeDecoderConfig config, int layer, ScalarType dtype, Device device)
        : base(nameof(RopeAttention))
    {
        this.config = config;
        this.layer = layer;
        var d = config.EffectiveHeadDim;
        qProj = ModelHelpers.Linear(config.HiddenSize, (long)config.NumAttentionHeads * d, config.QkvBias, dtype, device);
        kProj = ModelHelpers.Linear(config.HiddenSize, (long)config.EffectiveNumKeyValueHeads * d, config.QkvBias, dtype, device);
        vProj = ModelHelpers.Linear(config.HiddenSize, (long)config.EffectiveNumKeyValueHeads * d, config.QkvBias, dtype, device);
        oProj = ModelHelpers.Linear((long)config.NumAttentionHeads * d, config.HiddenSize, config.OutputBias, dtype, device);
        RegisterComponents();
    }

    internal Tensor Forward(Tensor x, Tensor cos, Tensor sin, AttentionBias bias, KeyValueCache? cache, bool training)
    {
        var (b, t) = (x.shape[0], x.shape[1]);
        var d = config.EffectiveHeadDim;
        var heads = config.NumAttentionHeads;
        var kvHeads = config.EffectiveNumKeyValueHeads;
        var q = qProj.forward(x).view(b, t, heads, d).transpose(1, 2);
        var k = kProj.forward(x).view(b, t, kvHeads, d).transpose(1, 2);
        var v = vProj.forward(x).view(b, t, kvHeads, d).transpose(1, 2);
        q = RotaryEmbedding.Apply(q, cos, sin);
        k = RotaryEmbedding.Apply(k, cos, sin);
        if (cache is not null)
        {
            (k, v) = cache.Update(layer, k, v);
        }

        if (heads != kvHeads)
        {
            // repeat_kv: [B, KV, S, d] -> [B, KV * n_rep, S, d], each KV head repeated n_rep times in place (repeat_interleave).
            k = k.repeat_interleave(heads / kvHeads, 1);
            v = v.repeat_interleave(heads / kvHeads, 1);
        }

        var o = ModelHelpers.Attend(q, k, v, bias, training ? config.AttentionDropout : 0.0);
        return oProj.forward(o.transpose(1, 2).reshape(b, t, heads * d));
    }
}

/// <summary>The gated MLP <c>down_proj(act(gate_proj(x)) · up_proj(x))</c>.</summary>
internal sealed class GatedMlp : nn.Module
{
    [ComponentName(Name = "gate_proj")]
    private readonly LinearProjection gateProj;
    [ComponentName(Name = "up_proj")]
    private readonly LinearProjection upProj;
    [ComponentName(Name = "down_proj")]
    private readonly LinearProjection downProj;
    private readonly Func<Tensor, Tensor> act;

    internal GatedMlp(RopeDecoderConfig config, ScalarType dtype, Device device)
        : base(nameof(GatedMlp))
    {
        gateProj = ModelHelpers.Linear(config.HiddenSize, config.IntermediateSize, config.MlpBias, dtype, device);
        upProj = ModelHelpers.Linear(config.HiddenSize, config.IntermediateSize, config.MlpBias, dtype, device);
        downProj = ModelHelpers.Linear(config.IntermediateSize, config.HiddenSize, config.MlpBias, dtype, device);
        act = Activations.Get(config.HiddenAct);
        RegisterComponents();
    }

    internal Tensor Forward(Tensor x) => downProj.forward(act(gateProj.forward(x)) * upProj.forward(x));
}
