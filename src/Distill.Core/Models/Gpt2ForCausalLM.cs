using TorchSharp.Utils;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Distill.Models;

/// <summary>
/// GPT-2 (transformers' <c>GPT2LMHeadModel</c>): learned positions, pre-LayerNorm blocks with Conv1D projections
/// (weights [in, out]), gelu_new MLP, tied lm_head. State-dict keys: <c>transformer.wte.weight</c>,
/// <c>transformer.h.{i}.attn.c_attn.weight</c>, ..., <c>transformer.ln_f.weight</c> (and <c>lm_head.weight</c> only when untied).
/// </summary>
public sealed class Gpt2ForCausalLM : CausalLM
{
    private readonly Gpt2Model transformer;
    [ComponentName(Name = "lm_head")]
    private readonly LinearProjection lmHead;

    internal Gpt2ForCausalLM(Gpt2Config config, ScalarType dtype, Device device)
        : base(nameof(Gpt2ForCausalLM), config)
    {
        transformer = new Gpt2Model(config, dtype, device);
        lmHead = config.TieWordEmbeddings
            ? LinearProjection.Tied(() => transformer.Wte.Weight, config.HiddenSize, config.VocabSize)
            : ModelHelpers.Linear(config.HiddenSize, config.VocabSize, false, dtype, device);
        RegisterComponents();
        FreezeCheckpointKeys();
    }

    /// <summary>Gets the GPT-2 configuration.</summary>
    public Gpt2Config Gpt2Config => (Gpt2Config)Config;

    /// <inheritdoc />
    public override LinearProjection LmHead => lmHead;

    /// <inheritdoc />
    public override Tensor EmbeddingWeight => transformer.Wte.Weight;

    /// <inheritdoc />
    private protected override Tensor ForwardHidden(Tensor ids, Tensor? mask, Tensor positions, long past, KeyValueCache? cache) =>
        transformer.Forward(ids, mask, positions, past, cache);

    /// <inheritdoc />
    protected internal override string? MapCheckpointKey(string name)
    {
        // Hub checkpoints come bare ("wte.weight"); save_pretrained adds "transformer.". Old ones carry the causal-mask
        // buffers attn.bias / attn.masked_bias, which are not weights.
        if (name.EndsWith(".attn.bias", StringComparison.Ordinal) || name.EndsWith(".attn.masked_bias", StringComparison.Ordinal))
        {
            return null;
        }

        if (!name.StartsWith("transformer.", StringComparison.Ordinal) && !name.StartsWith("lm_head.", StringComparison.Ordinal))
        {
            name = "transformer." + name;
        }

        return base.MapCheckpointKey(name);
    }

    /// <inheritdoc />
    protected internal override void InitializeWeights(Generator generator)
    {
        var c = Gpt2Config;
        using var noGrad = torch.no_grad();
        foreach (var (name, p) in named_parameters())
        {
            if (name.Contains(".ln_", StringComparison.Ordinal) || name.StartsWith("transformer.ln_f", StringComparison.Ordinal))
            {
                _ = name.EndsWith(".weight", StringComparison.Ordinal) ? p.fill_(TorchScalars.Constant(1.0)) : p.zero_();
            }
            else if (name.EndsWith(".bias", StringComparison.Ordinal))
            {
                p.zero_();
            }
            else
            {
                // transformers: c_proj weights get σ / √(2 · n_layer) (GPT-2 paper's residual scaling).
                var std = name.EndsWith("c_proj.weight", StringComparison.Ordinal) ? c.InitializerRange / Math.Sqrt(2.0 * c.NumHiddenLayers) : c.InitializerRange;
                FillNormal(p, std, generator);
            }
        }
    }
}

/// <summary>GPT-2 body (<c>transformer.*</c>).</summary>
internal sealed class Gpt2Model : nn.Module
{
    private readonly Gpt2Config config;
    private readonly TokenEmbedding wte;
    private readonly TokenEmbedding wpe;
    private readonly ModuleList<Gpt2Block> h;
    [ComponentName(Name = "ln_f")]
    private readonly LayerNorm lnF;

    internal Gpt2Model(Gpt2Config config, ScalarType dtype, Device device)
        : base(nameof(Gpt2Model))
    {
        this.config = config;
        wte = new TokenEmbedding(config.VocabSize, config.HiddenSize, dtype, device);
        wpe = new TokenEmbedding(config.MaxPositionEmbeddings, config.HiddenSize, dtype, device);
        h = new ModuleList<Gpt2Block>([.. Enumerable.Range(0, config.NumHiddenLayers).Select(i => new Gpt2Block(config, i, dtype, device))]);
        lnF = nn.LayerNorm(config.HiddenSize, config.LayerNormEpsilon, device: device, dtype: dtype);
        RegisterComponents();
    }

    internal TokenEmbedding Wte => wte;

    internal Tensor Forward(Tensor ids, Tensor? mask, Tensor positions, long past, KeyValueCache? cache)
    {
        var x = wte.forward(ids).Add(wpe.forward(positions));
        x = nn.functional.dropout(x, config.EmbeddingDropout, training);
        var bias = AttentionMask.Build(mask, ids.shape[0], ids.shape[1], past, null, x.dtype, x.device);
        foreach (var block in h)
        {
            x = block.Forward(x, bias, cache);
        }

        return lnF.forward(x);
    }
}

/// <summary>One GPT-2 block (<c>transformer.h.{i}</c>): ln_1, attn, ln_2, mlp.</summary>
internal sealed class Gpt2Block : nn.Module
{
    private readonly Gpt2Config config;
    private readonly int layer;
    // Declaration order = registration order = transformers' state-dict order.
    [ComponentName(Name = "ln_1")]
    private readonly LayerNorm ln1;
    private readonly Gpt2Attention attn;
    [ComponentName(Name = "ln_2")]
    private readonly LayerNorm ln2;
    private readonly Gpt2Mlp mlp;

    internal Gpt2Block(Gpt2Config config, int layer, ScalarType dtype, Device device)
        : base(nameof(Gpt2Block))
    {
        this.config = config;
        this.layer = layer;
        ln1 = nn.LayerNorm(config.HiddenSize, config.LayerNormEpsilon, device: device, dtype: dtype);
        attn = new Gpt2Attention(config, dtype, device);
        ln2 = nn.LayerNorm(config.HiddenSize, config.LayerNormEpsilon, device: device, dtype: dtype);
        mlp = new Gpt2Mlp(config, dtype, device);
        RegisterComponents();
    }

    internal Tensor Forward(Tensor x, AttentionBias bias, KeyValueCache? cache)
    {
        var a = attn.Forward(ln1.forward(x), bias, cache, layer, training);
        x = x.Add(nn.functional.dropout(a, config.ResidualDropout, training));
        var m = mlp.Forward(ln2.forward(x));
        return x.Add(nn.functional.dropout(m, config.ResidualDropout, training));
    }
}

/// <summary>GPT-2 attention (<c>attn.c_attn</c> fused q/k/v, <c>attn.c_proj</c>).</summary>
internal sealed class Gpt2Attention : nn.Module
{
    private readonly Gpt2Config config;
    [ComponentName(Name = "c_attn")]
    private readonly Conv1D cAttn;
    [ComponentName(Name = "c_proj")]
    private readonly Conv1D cProj;

    internal Gpt2Attention(Gpt2Config config, ScalarType dtype, Device device)
        : base(nameof(Gpt2Attention))
    {
        this.config = config;
        var hsz = config.HiddenSize;
        cAttn = new Conv1D(ModelHelpers.Empty(dtype, device, hsz, 3L * hsz), ModelHelpers.Empty(dtype, device, 3L * hsz));
        cProj = new Conv1D(ModelHelpers.Empty(dtype, device, hsz, hsz), ModelHelpers.Empty(dtype, device, hsz));
        RegisterComponents();
    }

    internal Tensor Forward(Tensor x, AttentionBias bias, KeyValueCache? cache, int layer, bool training)
    {
        var (b, t, hsz) = (x.shape[0], x.shape[1], x.shape[2]);
        var heads = config.NumAttentionHeads;
        var d = hsz / heads;
        var qkv = cAttn.forward(x).split(hsz, 2);
        var q = qkv[0].view(b, t, heads, d).transpose(1, 2);
        var k = qkv[1].view(b, t, heads, d).transpose(1, 2);
        var v = qkv[2].view(b, t, heads, d).transpose(1, 2);
        if (cache is not null)
        {
            (k, v) = cache.Update(layer, k, v);
        }

        // SDPA always divides by √d: undo it when scale_attn_weights is off, and add the inverse-layer scaling when on.
        var qScale = (config.ScaleAttentionWeights ? 1.0 : Math.Sqrt(d)) / (config.ScaleAttentionByInverseLayerIndex ? layer + 1 : 1);
        if (qScale != 1.0)
        {
            q = q.Mul(qScale);
        }

        var o = ModelHelpers.Attend(q, k, v, bias, training ? config.AttentionDropout : 0.0);
        return cProj.forward(o.transpose(1, 2).reshape(b, t, hsz));
    }
}

/// <summary>GPT-2 MLP (<c>mlp.c_fc</c>, activation, <c>mlp.c_proj</c>).</summary>
internal sealed class Gpt2Mlp : nn.Module
{
    [ComponentName(Name = "c_fc")]
    private readonly Conv1D cFc;
    [ComponentName(Name = "c_proj")]
    private readonly Conv1D cProj;
    private readonly Func<Tensor, Tensor> act;

    internal Gpt2Mlp(Gpt2Config config, ScalarType dtype, Device device)
        : base(nameof(Gpt2Mlp))
    {
        var inner = config.EffectiveInnerSize;
        cFc = new Conv1D(ModelHelpers.Empty(dtype, device, config.HiddenSize, inner), ModelHelpers.Empty(dtype, device, inner));
        cProj = new Conv1D(ModelHelpers.Empty(dtype, device, inner, config.HiddenSize), ModelHelpers.Empty(dtype, device, config.HiddenSize));
        act = Activations.Get(config.ActivationFunction);
        RegisterComponents();
    }

    internal Tensor Forward(Tensor x) => cProj.forward(act(cFc.forward(x)));
}
