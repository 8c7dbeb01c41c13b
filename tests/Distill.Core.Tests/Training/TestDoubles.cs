using Distill.Models;
using Distill.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Distill.Core.Tests.Training;

internal sealed class TinyConfig : CausalLMConfig
{
}

/// <summary>
/// A tiny causal LM for trainer tests: embedding → dropout → tanh(Linear) → LayerNorm (<c>ln_f</c>) → lm_head (with bias).
/// Parameter names: embed_tokens.weight, proj.weight, proj.bias, ln_f.weight, ln_f.bias, lm_head.weight, lm_head.bias.
/// </summary>
internal sealed class TinyCausalLM : nn.Module<CausalLMInput, CausalLMOutput>, ICausalLM
{
    private readonly Embedding embed_tokens;
    private readonly Dropout dropout;
    private readonly LinearProjection proj;
    private readonly LayerNorm ln_f;
    private readonly LinearProjection lm_head;

    public TinyCausalLM(int vocab, int hidden, long seed, double dropoutP = 0.0)
        : base(nameof(TinyCausalLM))
    {
        torch.manual_seed(seed);
        embed_tokens = nn.Embedding(vocab, hidden);
        dropout = nn.Dropout(dropoutP);
        proj = new LinearProjection(hidden, hidden);
        ln_f = nn.LayerNorm(hidden);
        lm_head = new LinearProjection(hidden, vocab, hasBias: true);
        RegisterComponents();
        Config = new TinyConfig
        {
            ModelType = "tiny",
            VocabSize = vocab,
            HiddenSize = hidden,
            NumHiddenLayers = 1,
            NumAttentionHeads = 1,
            MaxPositionEmbeddings = 64,
        };
    }

    public CausalLMConfig Config { get; }

    public nn.Module Module => this;

    public Tensor LmHeadWeight => lm_head.Weight;

    public Tensor? LmHeadBias => lm_head.Bias;

    public Tensor EmbeddingWeight => embed_tokens.weight!;

    public CausalLMOutput Forward(CausalLMInput input) => forward(input);

    public override CausalLMOutput forward(CausalLMInput input)
    {
        var h = embed_tokens.forward(input.InputIds);
        h = dropout.forward(h);
        h = proj.forward(h).tanh();
        h = ln_f.forward(h);
        var logits = input.ComputeLogits ? lm_head.forward(h) : null;
        return new CausalLMOutput(logits, input.ReturnHiddenStates ? h : null, null);
    }

    /// <summary>Copies every tensor of <paramref name="other"/> into this model.</summary>
    public void CopyFrom(TinyCausalLM other)
    {
        using var noGrad = no_grad();
        var src = other.state_dict();
        foreach (var (name, t) in state_dict())
        {
            t.copy_(src[name]);
        }
    }
}

/// <summary>Plain SFT: summed token cross-entropy over valid labels; no teacher.</summary>
internal sealed class SumCrossEntropyObjective : IDistillationObjective
{
    public string Name => "test_ce";

    public ObjectiveRequirements Requirements { get; } = new() { NeedsTeacher = false, NeedsTeacherLogits = false };

    public nn.Module? Module => null;

    public ObjectiveResult Compute(ObjectiveContext context)
    {
        var logits = context.Student.Logits!;
        var labels = context.Batch.Labels;
        var ce = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[^1]).to(ScalarType.Float32), labels.reshape(-1), ignore_index: DistillationBatch.IgnoreIndex, reduction: nn.Reduction.Sum);
        var n = context.Batch.CountValidTokens();
        return new ObjectiveResult(ce, tensor((float)n), tensor(n), new Dictionary<string, Tensor> { ["ce"] = ce.detach() });
    }
}

/// <summary>Forward KL(p_teacher ‖ q_student) summed over valid positions, plus CE mixed 50/50 (DSKD's α = 0.5).</summary>
internal sealed class SumForwardKlObjective : IDistillationObjective
{
    public string Name => "test_forward_kl";

    public ObjectiveRequirements Requirements { get; } = new();

    public nn.Module? Module => null;

    public ObjectiveResult Compute(ObjectiveContext context)
    {
        var s = context.Student.Logits!.to(ScalarType.Float32);
        var t = context.Teacher!.Logits!.to(ScalarType.Float32);
        var mask = TokenReduction.ValidMask(context.Batch.Labels);
        // kl_div(input = log q_student, target = log p_teacher, log_target: true) = p_t (log p_t − log q_s): forward KL.
        var perToken = nn.functional.kl_div(s.log_softmax(-1), t.log_softmax(-1), reduction: nn.Reduction.None, log_target: true).sum(-1);
        var kd = TokenReduction.MaskedSum(perToken, mask);
        var ce = nn.functional.cross_entropy(s.reshape(-1, s.shape[^1]), context.Batch.Labels.reshape(-1), ignore_index: DistillationBatch.IgnoreIndex, reduction: nn.Reduction.Sum);
        var loss = (0.5 * ce) + (0.5 * kd);
        return ObjectiveResult.FromTokens(loss, context.Batch.Labels, new Dictionary<string, Tensor> { ["ce"] = ce, ["kd"] = kd });
    }
}

/// <summary>An objective with its own trainable module: CE of the student logits times a learned scale (starts at 1).</summary>
internal sealed class ScaledCrossEntropyObjective : IDistillationObjective
{
    private readonly ScaleModule module = new();

    public string Name => "test_scaled_ce";

    public ObjectiveRequirements Requirements { get; } = new() { NeedsTeacher = false, NeedsTeacherLogits = false };

    public nn.Module? Module => module;

    public Tensor Scale => module.Scale;

    public ObjectiveResult Compute(ObjectiveContext context)
    {
        var logits = context.Student.Logits!.to(ScalarType.Float32) * module.Scale.to(ScalarType.Float32);
        var ce = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[^1]), context.Batch.Labels.reshape(-1), ignore_index: DistillationBatch.IgnoreIndex, reduction: nn.Reduction.Sum);
        return ObjectiveResult.FromTokens(ce, context.Batch.Labels, new Dictionary<string, Tensor>());
    }

    private sealed class ScaleModule : nn.Module
    {
        private readonly Parameter scale;

        public ScaleModule()
            : base("scale")
        {
            scale = new Parameter(torch.ones(1));
            RegisterComponents();
        }

        public Parameter Scale => scale;
    }
}

/// <summary>
/// Deterministic synthetic batches: random sequences of random lengths (so micro-batches have
/// different valid-token counts), shuffled per epoch by a generator seeded from (seed, epoch), padded per batch, prompt
/// masked. Labels are aligned with logits: label[t] = id[t+1], −100 on the prompt and padding.
/// </summary>
internal sealed class SyntheticBatchSource : IBatchSource
{
    private readonly List<long[]> sequences = [];
    private readonly List<int> promptLengths = [];
    private readonly int batchSize;
    private readonly int seed;

    public SyntheticBatchSource(int examples, int batchSize, int vocab, int seed, int minLength = 4, int maxLength = 12)
    {
        this.batchSize = batchSize;
        this.seed = seed;
        var rng = new Random(seed);
        for (var i = 0; i < examples; i++)
        {
            var n = rng.Next(minLength, maxLength + 1);
            // A learnable pattern: each token is (previous + 1) mod vocab after a random start, with a little noise.
            var seq = new long[n];
            seq[0] = rng.Next(vocab);
            for (var t = 1; t < n; t++)
            {
                seq[t] = rng.NextDouble() < 0.9 ? (seq[t - 1] + 1) % vocab : rng.Next(vocab);
            }

            sequences.Add(seq);
            promptLengths.Add(rng.Next(1, n - 1));
        }
    }

    public int GetBatchCalls { get; private set; }

    public int BatchesPerEpoch => sequences.Count / batchSize;

    public DistillationBatch GetBatch(int epoch, int index)
    {
        GetBatchCalls++;
        var order = Enumerable.Range(0, sequences.Count).ToArray();
        new Random(HashCode.Combine(seed, epoch)).Shuffle(order);
        var rows = order.Skip(index * batchSize).Take(batchSize).ToArray();
        var t = rows.Max(r => sequences[r].Length) - 1;
        var ids = new long[rows.Length * t];
        var mask = new long[rows.Length * t];
        var labels = new long[rows.Length * t];
        Array.Fill(labels, DistillationBatch.IgnoreIndex);
        for (var b = 0; b < rows.Length; b++)
        {
            var seq = sequences[rows[b]];
            for (var i = 0; i < seq.Length - 1; i++)
            {
                ids[(b * t) + i] = seq[i];
                mask[(b * t) + i] = 1;
                if (i >= promptLengths[rows[b]] - 1)
                {
                    labels[(b * t) + i] = seq[i + 1];
                }
            }
        }

        return new DistillationBatch
        {
            InputIds = torch.tensor(ids, [rows.Length, t]),
            AttentionMask = torch.tensor(mask, [rows.Length, t]),
            Labels = torch.tensor(labels, [rows.Length, t]),
        };
    }
}

/// <summary>A synchronous <see cref="IProgress{T}"/> (System.Progress posts to the thread pool).</summary>
internal sealed class SyncProgress<T>(Action<T> onReport) : IProgress<T>
{
    public void Report(T value) => onReport(value);
}
