using Distill.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Distill.Lora.Tests;

#pragma warning disable IDE1006, SA1300 // Module field names are the transformers names (they become the state-dict names).

/// <summary>A Llama-shaped toy with transformers' module names (model.layers.N.self_attn.q_proj, ..., lm_head), built from <see cref="LinearProjection"/>.</summary>
internal sealed class TinyLlamaLike : nn.Module<Tensor, Tensor>
{
    private readonly LlamaBody model;
    private readonly LinearProjection lm_head;

    public TinyLlamaLike(int vocab = 11, int hidden = 6, int kvDim = 4, int intermediate = 10, int layers = 2, bool qkvBias = false)
        : base(nameof(TinyLlamaLike))
    {
        Hidden = hidden;
        KvDim = kvDim;
        Intermediate = intermediate;
        Vocab = vocab;
        NumLayers = layers;
        model = new LlamaBody(vocab, hidden, kvDim, intermediate, layers, qkvBias);
        lm_head = new LinearProjection(hidden, vocab, hasBias: false);
        RegisterComponents();
    }

    public int Hidden { get; }

    public int KvDim { get; }

    public int Intermediate { get; }

    public int Vocab { get; }

    public int NumLayers { get; }

    public override Tensor forward(Tensor ids)
    {
        using var scope = torch.NewDisposeScope();
        return lm_head.forward(model.forward(ids)).MoveToOuterDisposeScope();
    }

    /// <summary>A copy of this model with the same base weights (a fresh base to load adapters onto).</summary>
    public TinyLlamaLike CloneBase()
    {
        var copy = new TinyLlamaLike(Vocab, Hidden, KvDim, Intermediate, NumLayers, model.QkvBias);
        using var noGrad = torch.no_grad();
        var source = state_dict();
        foreach (var (name, t) in copy.state_dict())
        {
            t.copy_(source[name]);
        }

        return copy;
    }

    private sealed class LlamaBody : nn.Module<Tensor, Tensor>
    {
        private readonly Embedding embed_tokens;
        private readonly ModuleList<LlamaLayer> layers;
        private readonly LayerNorm norm;

        public LlamaBody(int vocab, int hidden, int kvDim, int intermediate, int n, bool qkvBias)
            : base(nameof(LlamaBody))
        {
            QkvBias = qkvBias;
            embed_tokens = nn.Embedding(vocab, hidden);
            layers = nn.ModuleList([.. Enumerable.Range(0, n).Select(_ => new LlamaLayer(hidden, kvDim, intermediate, qkvBias))]);
            norm = nn.LayerNorm(hidden);
            RegisterComponents();
        }

        public bool QkvBias { get; }

        public override Tensor forward(Tensor ids)
        {
            var x = embed_tokens.forward(ids);
            foreach (var layer in layers)
            {
                x = layer.forward(x);
            }

            return norm.forward(x);
        }
    }

    private sealed class LlamaLayer : nn.Module<Tensor, Tensor>
    {
        private readonly Attention self_attn;
        private readonly Mlp mlp;

        public LlamaLayer(int hidden, int kvDim, int intermediate, bool qkvBias)
            : base(nameof(LlamaLayer))
        {
            self_attn = new Attention(hidden, kvDim, qkvBias);
            mlp = new Mlp(hidden, intermediate);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x)
        {
            var h = x + self_attn.forward(x);
            return h + mlp.forward(h);
        }
    }

    private sealed class Attention : nn.Module<Tensor, Tensor>
    {
        private readonly LinearProjection q_proj;
        private readonly LinearProjection k_proj;
        private readonly LinearProjection v_proj;
        private readonly LinearProjection o_proj;

        public Attention(int hidden, int kvDim, bool qkvBias)
            : base(nameof(Attention))
        {
            q_proj = new LinearProjection(hidden, hidden, qkvBias);
            k_proj = new LinearProjection(hidden, kvDim, qkvBias);
            v_proj = new LinearProjection(hidden, kvDim, qkvBias);
            o_proj = new LinearProjection(kvDim, hidden, hasBias: false);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x)
        {
            // Not attention, but every projection shapes the output: o(sigmoid(q·k-ish) ⊙ v).
            var q = q_proj.forward(x);
            var k = k_proj.forward(x);
            var v = v_proj.forward(x);
            var gate = torch.sigmoid(q.sum(-1, keepdim: true) * k);
            return o_proj.forward(gate * v);
        }
    }

    private sealed class Mlp : nn.Module<Tensor, Tensor>
    {
        private readonly LinearProjection gate_proj;
        private readonly LinearProjection up_proj;
        private readonly LinearProjection down_proj;

        public Mlp(int hidden, int intermediate)
            : base(nameof(Mlp))
        {
            gate_proj = new LinearProjection(hidden, intermediate, hasBias: false);
            up_proj = new LinearProjection(hidden, intermediate, hasBias: false);
            down_proj = new LinearProjection(intermediate, hidden, hasBias: false);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x) => down_proj.forward(nn.functional.silu(gate_proj.forward(x)) * up_proj.forward(x));
    }
}

/// <summary>A GPT-2-shaped toy with transformers' names (transformer.h.N.attn.c_attn, mlp.c_fc, ..., lm_head), built from <see cref="Conv1D"/>.</summary>
internal sealed class TinyGpt2Like : nn.Module<Tensor, Tensor>
{
    private readonly Gpt2Body transformer;
    private readonly LinearProjection lm_head;

    public TinyGpt2Like(int vocab = 13, int hidden = 4, int layers = 2)
        : base(nameof(TinyGpt2Like))
    {
        Hidden = hidden;
        transformer = new Gpt2Body(vocab, hidden, layers);
        lm_head = new LinearProjection(hidden, vocab, hasBias: false);
        RegisterComponents();
    }

    public int Hidden { get; }

    public override Tensor forward(Tensor ids)
    {
        using var scope = torch.NewDisposeScope();
        return lm_head.forward(transformer.forward(ids)).MoveToOuterDisposeScope();
    }

    private sealed class Gpt2Body : nn.Module<Tensor, Tensor>
    {
        private readonly Embedding wte;
        private readonly ModuleList<Block> h;
        private readonly LayerNorm ln_f;

        public Gpt2Body(int vocab, int hidden, int n)
            : base(nameof(Gpt2Body))
        {
            wte = nn.Embedding(vocab, hidden);
            h = nn.ModuleList([.. Enumerable.Range(0, n).Select(_ => new Block(hidden))]);
            ln_f = nn.LayerNorm(hidden);
            RegisterComponents();
        }

        public override Tensor forward(Tensor ids)
        {
            var x = wte.forward(ids);
            foreach (var b in h)
            {
                x = b.forward(x);
            }

            return ln_f.forward(x);
        }
    }

    private sealed class Block : nn.Module<Tensor, Tensor>
    {
        private readonly LayerNorm ln_1;
        private readonly Gpt2Attention attn;
        private readonly Gpt2Mlp mlp;

        public Block(int hidden)
            : base(nameof(Block))
        {
            ln_1 = nn.LayerNorm(hidden);
            attn = new Gpt2Attention(hidden);
            mlp = new Gpt2Mlp(hidden);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x)
        {
            var h = x + attn.forward(ln_1.forward(x));
            return h + mlp.forward(h);
        }
    }

    private sealed class Gpt2Attention : nn.Module<Tensor, Tensor>
    {
        private readonly Conv1D c_attn;
        private readonly Conv1D c_proj;

        public Gpt2Attention(int hidden)
            : base(nameof(Gpt2Attention))
        {
            c_attn = new Conv1D(hidden, 3 * hidden);
            c_proj = new Conv1D(hidden, hidden);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x)
        {
            var qkv = c_attn.forward(x).chunk(3, -1);
            return c_proj.forward(torch.sigmoid(qkv[0] * qkv[1]) * qkv[2]);
        }
    }

    private sealed class Gpt2Mlp : nn.Module<Tensor, Tensor>
    {
        private readonly Conv1D c_fc;
        private readonly Conv1D c_proj;

        public Gpt2Mlp(int hidden)
            : base(nameof(Gpt2Mlp))
        {
            c_fc = new Conv1D(hidden, 4 * hidden);
            c_proj = new Conv1D(4 * hidden, hidden);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x) => c_proj.forward(nn.functional.gelu(c_fc.forward(x)));
    }
}
