using Distill.Losses.Kernels;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Distill.Losses.Tests;

/// <summary>
/// The fused kernel's gradient hand-off (the lm_head gradient becomes the parameter's .grad, accumulates into an existing
/// one, is scaled by the incoming gradient, and still flows through autograd for a non-leaf weight), the lm_head adapter
/// path, chunked ATKD's settings and edge cases, and the automatic chunk-size rule. Expected values come from plain
/// autograd over full logits (the naive formula) on the same inputs.
/// </summary>
[Collection("Sequential")]
public sealed class FusedKernelTests
{
    private const long N = 11;
    private const long H = 6;
    private const long V = 17;

    [Fact]
    public void Backward_LeafWeight_GradientBecomesGradAndAccumulates()
    {
        using var scope = NewDisposeScope();
        var (h, w, t, y) = Inputs(1);
        var (_, naiveH, naiveW) = Naive(h, w, t, y, adapter: null);

        // Twice into the same .grad (gradient accumulation), the second time with the loss scaled by 3: 1 + 3 = 4× the grads.
        var h1 = h.detach().clone().requires_grad_(true);
        var w1 = w.detach().clone().requires_grad_(true);
        Kernel(h1, w1, t, y, chunk: 4).backward();
        Assert.NotNull(w1.grad);
        AssertRel(naiveW, w1.grad!, "dL/dW after one backward");
        (Kernel(h1, w1, t, y, chunk: 4) * 3).backward();
        AssertRel(naiveW * 4, w1.grad!, "dL/dW accumulated (1 + 3)");
        AssertRel(naiveH * 4, h1.grad!, "dL/dh accumulated (1 + 3)");
    }

    [Fact]
    public void Backward_TiedAndNonLeafWeight_MatchesAutograd()
    {
        using var scope = NewDisposeScope();
        var (h, w, t, y) = Inputs(2);
        var (_, _, naiveW) = Naive(h, w, t, y, adapter: null);

        // Tied: the weight is also used elsewhere in the graph (as an embedding table is): d/dW (loss + Σ W²) = naive + 2W.
        var w1 = w.detach().clone().requires_grad_(true);
        (Kernel(h, w1, t, y, chunk: 5) + w1.pow(2).sum()).backward();
        AssertRel(naiveW + 2 * w, w1.grad!, "tied weight");

        // Non-leaf weight (a scaled view of a parameter): the gradient goes through autograd: d/dP of loss(2P) = 2·naive(2P).
        var p = (w / 2).detach().requires_grad_(true);
        Kernel(h, p * 2, t, y, chunk: 3).backward();
        AssertRel(naiveW * 2, p.grad!, "non-leaf weight");
    }

    [Fact]
    public void Apply_WithLowRankAdapter_MatchesFullLogitsAutograd()
    {
        using var scope = NewDisposeScope();
        var (h, w, t, y) = Inputs(3);
        using var adapter = new LowRankAdapter(H, V, rank: 2, seed: 4);
        var (naiveLoss, naiveH, naiveW) = Naive(h, w, t, y, adapter);
        var naiveA = adapter.A.grad!.clone();
        var naiveB = adapter.B.grad!.clone();
        adapter.zero_grad();

        var h1 = h.detach().clone().requires_grad_(true);
        var w1 = w.detach().clone().requires_grad_(true);
        var loss = FusedLinearDivergence.Apply(h1, w1, null, new TeacherSource(t), y, new ForwardKlChunkDivergence(1.0, 1.0), 4, adapter: LmHeadAdapter.FromModule(adapter));
        loss.backward();
        GoldenTests.AssertClose(naiveLoss, loss.item<float>(), 1e-5);
        AssertRel(naiveH, h1.grad!, "dL/dh (base + adapter path)");
        AssertRel(naiveW, w1.grad!, "dL/dW");
        AssertRel(naiveA, adapter.A.grad!, "dL/dA");
        AssertRel(naiveB, adapter.B.grad!, "dL/dB");

        // Frozen base (LoRA): only the adapter trains; the base weight gets no gradient.
        adapter.zero_grad();
        var frozen = w.detach();
        FusedLinearDivergence.Apply(h.detach(), frozen, null, new TeacherSource(t), y, new ForwardKlChunkDivergence(1.0, 1.0), 3, adapter: LmHeadAdapter.FromModule(adapter)).backward();
        Assert.Null(frozen.grad);
        AssertRel(naiveA, adapter.A.grad!, "dL/dA with a frozen base");
    }

    [Theory]
    [InlineData(ObjectiveNames.ForwardKl)]
    [InlineData(ObjectiveNames.Atkd)]
    public void ChunkedObjective_StudentWithLmHeadAdapter_SeesTheAdapter(string name)
    {
        using var scope = NewDisposeScope();
        var labels = TestData.Labels(5, 2, 5, V, (0, 2));
        var teacher = TestData.Logits(6, 2, 5, V);
        var hidden = randn(2, 5, H, generator: new Generator(7));
        var plain = new AdaptedHeadModel(H, V, seed: 8, withAdapter: false);
        var adapted = new AdaptedHeadModel(H, V, seed: 8, withAdapter: true);
        double Loss(ICausalLM model, bool chunked)
        {
            var objective = TestData.Create(chunked ? name + ObjectiveNames.ChunkedSuffix : name, o => o.ChunkSize = 4);
            var student = chunked ? new CausalLMOutput(null, hidden, null) : new CausalLMOutput(((AdaptedHeadModel)model).LmHead.forward(hidden), null, null);
            return TestData.Value(objective.Compute(new ObjectiveContext
            {
                Batch = TestData.Batch(labels),
                Student = student,
                Teacher = new TeacherOutput { Logits = teacher },
                StudentModel = model,
            }).LossSum);
        }

        var naive = Loss(adapted, chunked: false);
        GoldenTests.AssertClose(naive, Loss(adapted, chunked: true), 1e-5);
        Assert.True(Math.Abs(naive - Loss(plain, chunked: true)) > 1e-3, "the adapter changes the loss, so the chunked loss must include it");
    }

    [Theory]
    [InlineData(false, false, 1.0, 1.0, 3)]
    [InlineData(true, false, 1.3, 0.8, 4)]
    [InlineData(false, true, 1.0, 1.0, 10)]
    public void AtkdChunked_SettingsAndCompatibility_MatchFullLogits(bool reverse, bool official, double ts, double tt, int chunk)
    {
        using var scope = NewDisposeScope();
        var labels = TestData.Labels(9, 2, 5, V, (0, 0), (1, 3));
        foreach (var teacherFromHidden in new[] { false, true })
        {
            var (loss, grad) = AtkdRun(labels, reverse, official, ts, tt, chunk: null, teacherFromHidden);
            var (chunkedLoss, chunkedGrad) = AtkdRun(labels, reverse, official, ts, tt, chunk, teacherFromHidden);
            GoldenTests.AssertClose(loss, chunkedLoss, 1e-5);
            AssertRel(grad, chunkedGrad, "dL/dh");
        }
    }

    [Fact]
    public void AtkdChunked_EmptyGroupAndNoScoredToken_FollowTheFullLogitsObjective()
    {
        using var scope = NewDisposeScope();
        // Two scored tokens with different uncertainty: the lower median is the smaller one, so easy = {} and hard = both.
        var labels = TestData.Labels(10, 1, 4, V, (0, 0), (0, 1));
        var (official, _) = AtkdRun(labels, false, true, 1.0, 1.0, chunk: 3, teacherFromHidden: false);
        Assert.True(double.IsNaN(official), "official ATKD: an empty easy group is 0/0 = NaN");
        var (fixedLoss, _) = AtkdRun(labels, false, false, 1.0, 1.0, chunk: null, teacherFromHidden: false);
        var (fixedChunked, fixedGrad) = AtkdRun(labels, false, false, 1.0, 1.0, chunk: 3, teacherFromHidden: false);
        GoldenTests.AssertClose(fixedLoss, fixedChunked, 1e-5);
        Assert.True(fixedGrad.isfinite().all().item<bool>());

        var none = full(1, 4, DistillationBatch.IgnoreIndex, dtype: ScalarType.Int64);
        var (zero, zeroGrad) = AtkdRun(none, false, false, 1.0, 1.0, chunk: 3, teacherFromHidden: false);
        Assert.Equal(0.0, zero);
        Assert.Equal(0f, zeroGrad.abs().max().item<float>());
    }

    [Theory]
    [InlineData(32000, 1024, 128)]
    [InlineData(128256, 1024, 128)]
    [InlineData(50257, 768, 128)]   // budget 77 MB → 96 rows → 64 → clamped up to 128
    [InlineData(32000, 4096, 512)]  // H/8
    [InlineData(152064, 8192, 1024)] // H/8 = 1024, the upper clamp
    [InlineData(1000, 64, 1024)]    // tiny head: the 64 MiB floor allows far more than 1024 rows
    public void ChunkSizeRule_FromVocabularyAndHidden_FollowsTheDocumentedFormula(long vocab, long hidden, int expected)
    {
        Assert.Equal(expected, ChunkSizeRule.Resolve(null, vocab, hidden));
        Assert.Equal(7, ChunkSizeRule.Resolve(7, vocab, hidden));
        // The working set of the chosen chunk stays within the budget unless a clamp forced more rows.
        var workingSet = (long)expected * vocab * sizeof(float) * ChunkSizeRule.BuffersPerRow;
        Assert.True(workingSet <= ChunkSizeRule.BudgetBytes(vocab, hidden) || expected == ChunkSizeRule.MinimumRows);
    }

    /// <summary>
    /// ATKD's L·N (N scored tokens, the kernel's sum) and dL·N/dh: by <see cref="Atkd.Compute"/> over full logits when
    /// <paramref name="chunk"/> is null, else by the fused kernel with <see cref="AtkdChunkDivergence"/>.
    /// </summary>
    private static (double Loss, Tensor GradH) AtkdRun(Tensor labels, bool reverse, bool official, double ts, double tt, int? chunk, bool teacherFromHidden)
    {
        var model = new TinyCausalLM(seed: 11, vocab: V, hidden: H, withBias: true);
        var teacherModel = new TinyCausalLM(seed: 14, vocab: V, hidden: 4, withBias: true);
        long b = labels.shape[0], len = labels.shape[1], rows = b * len;
        var hidden = (randn(b, len, H, generator: new Generator(12)) * 0.7).requires_grad_(true);
        var teacherHidden = randn(rows, 4, generator: new Generator(13));
        Tensor teacher;
        using (no_grad())
        {
            teacher = nn.functional.linear(teacherHidden, teacherModel.LmHeadWeight, teacherModel.LmHeadBias);
        }

        var n = labels.ne(DistillationBatch.IgnoreIndex).sum().item<long>();
        Tensor loss;
        if (chunk is null)
        {
            var student = nn.functional.linear(hidden, model.LmHeadWeight, model.LmHeadBias);
            loss = Atkd.Compute(student, teacher.reshape(b, len, V), labels, 0.2, ts, tt, reverse, official).Loss * n;
        }
        else
        {
            var source = teacherFromHidden ? new TeacherSource(null, teacherHidden, teacherModel.LmHeadWeight, teacherModel.LmHeadBias) : new TeacherSource(teacher);
            loss = FusedLinearDivergence.Apply(hidden.reshape(rows, H), model.LmHeadWeight, model.LmHeadBias, source, labels.reshape(rows),
                new AtkdChunkDivergence(0.2, ts, tt, reverse, official), chunk.Value);
        }

        loss.backward();
        return (TestData.Value(loss), hidden.grad!);
    }

    private static (Tensor H, Tensor W, Tensor T, Tensor Y) Inputs(ulong seed)
    {
        var g = new Generator(seed);
        var h = randn(N, H, generator: g).requires_grad_(true);
        var w = (randn(V, H, generator: g) * 0.5).requires_grad_(true);
        var t = randn(N, V, generator: g) * 2;
        var y = randint(0, V, [N], generator: g, dtype: ScalarType.Int64);
        y[2] = tensor(DistillationBatch.IgnoreIndex);
        y[7] = tensor(DistillationBatch.IgnoreIndex);
        return (h, w, t, y);
    }

    private static Tensor Kernel(Tensor h, Tensor w, Tensor t, Tensor y, int chunk) =>
        FusedLinearDivergence.Apply(h, w, null, new TeacherSource(t), y, new ForwardKlChunkDivergence(1.0, 1.0), chunk);

    /// <summary>Forward KL over full logits by plain autograd: loss, dL/dh, dL/dW (adapter gradients left on its parameters).</summary>
    private static (double Loss, Tensor GradH, Tensor GradW) Naive(Tensor h, Tensor w, Tensor t, Tensor y, LowRankAdapter? adapter)
    {
        var hn = h.detach().clone().requires_grad_(true);
        var wn = w.detach().clone().requires_grad_(true);
        var logits = nn.functional.linear(hn, wn);
        if (adapter is not null)
        {
            logits = logits + adapter.call(hn);
        }

        var loss = TokenReduction.MaskedSum(ForwardKl.PerToken(logits, t), TokenReduction.ValidMask(y));
        loss.backward();
        return (loss.item<float>(), hn.grad!, wn.grad!);
    }

    private static void AssertRel(Tensor expected, Tensor actual, string what)
    {
        var err = (actual - expected).abs().max().item<float>() / Math.Max(expected.abs().max().item<float>(), 1e-12f);
        Assert.True(err <= 1e-5, $"{what}: max |Δ| / max |ref| = {err:E2}");
    }

    /// <summary>A LoRA-shaped additive adapter: delta = 0.5·(x·Aᵀ)·Bᵀ.</summary>
    private sealed class LowRankAdapter : nn.Module<Tensor, Tensor>
    {
        private readonly Parameter a;
        private readonly Parameter b;

        public LowRankAdapter(long inFeatures, long outFeatures, int rank, ulong seed)
            : base(nameof(LowRankAdapter))
        {
            var g = new Generator(seed);
            a = nn.Parameter(randn(rank, inFeatures, generator: g) * 0.3);
            b = nn.Parameter(randn(outFeatures, rank, generator: g) * 0.3);
            RegisterComponents();
        }

        public Parameter A => a;

        public Parameter B => b;

        public override Tensor forward(Tensor input) => nn.functional.linear(nn.functional.linear(input, a), b) * 0.5;
    }

    /// <summary>A causal LM whose only layer is its lm_head projection (hidden states in = hidden states out), optionally with an adapter.</summary>
    private sealed class AdaptedHeadModel : Distill.Models.CausalLM
    {
        private readonly Distill.Models.LinearProjection lm_head;

        public AdaptedHeadModel(long hidden, long vocab, ulong seed, bool withAdapter)
            : base(nameof(AdaptedHeadModel), new HeadConfig { ModelType = "tiny", VocabSize = (int)vocab, HiddenSize = (int)hidden, NumHiddenLayers = 0, NumAttentionHeads = 1, MaxPositionEmbeddings = 64 })
        {
            var g = new Generator(seed);
            lm_head = new Distill.Models.LinearProjection(nn.Parameter(randn(vocab, hidden, generator: g) * 0.5));
            if (withAdapter)
            {
                lm_head.SetAdapter(new LowRankAdapter(hidden, vocab, rank: 2, seed: seed + 1));
            }

            RegisterComponents();
        }

        public override Distill.Models.LinearProjection LmHead => lm_head;

        public override Tensor EmbeddingWeight => lm_head.Weight;

        private protected override Tensor ForwardHidden(Tensor ids, Tensor? mask, Tensor positions, long past, Distill.Models.KeyValueCache? cache) =>
            throw new NotSupportedException("the objective is given hidden states directly");

        protected internal override void InitializeWeights(Generator generator)
        {
        }
    }

    private sealed class HeadConfig : CausalLMConfig;
}
