using Distill.Eval.Metrics;
using TorchSharp;
using Distill.Tests.Shared;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Distill.Eval.Tests.Metrics;

public sealed class PerplexityTests
{
    [Fact]
    public void FromLogits_UniformLogits_PerplexityEqualsVocabSize()
    {
        // Uniform p = 1/V at every position: NLL = ln V per token, perplexity = V = 7; 3 of 4 labels are scored.
        using var scope = torch.NewDisposeScope();
        var logits = torch.zeros(1, 4, 7);
        var labels = torch.tensor(new long[] { 1, -100, 3, 6 }).reshape(1, 4);
        var result = Perplexity.FromLogits(logits, labels);
        Assert.Equal(3, result.TokenCount);
        Assert.Equal(3 * Math.Log(7), result.TotalNll, 5);
        Assert.Equal(7.0, result.Perplexity, 4);
    }

    [Fact]
    public void FromLogits_KnownDistribution_MatchesHandDerivation()
    {
        // logits [ln 1, ln 3] → p = [1/4, 3/4]; labels 1 and 0: NLL = −ln(3/4) − ln(1/4) = ln(16/3).
        using var scope = torch.NewDisposeScope();
        var row = new float[] { 0f, MathF.Log(3f) };
        var logits = torch.tensor(row.Concat(row).ToArray()).reshape(1, 2, 2);
        var labels = torch.tensor(new long[] { 1, 0 }).reshape(1, 2);
        var result = Perplexity.FromLogits(logits, labels);
        Assert.Equal(Math.Log(16.0 / 3.0), result.TotalNll, 5);
        Assert.Equal(Math.Sqrt(16.0 / 3.0), result.Perplexity, 5);
    }

    [Fact]
    public void FromLogits_AllIgnored_ReturnsNaNNotError()
    {
        using var scope = torch.NewDisposeScope();
        var result = Perplexity.FromLogits(torch.randn(2, 3, 5), torch.full(2, 3, -100L));
        Assert.Equal(0, result.TokenCount);
        Assert.True(double.IsNaN(result.Perplexity));
    }

    [Fact]
    public void FromLogits_ShapeMismatch_ThrowsNamingShapes()
    {
        using var scope = torch.NewDisposeScope();
        var ex = Assert.Throws<ArgumentException>(() => Perplexity.FromLogits(torch.zeros(2, 3, 5), torch.zeros(2, 4, ScalarType.Int64)));
        Assert.Contains("[2, 3, 5]", ex.Message, StringComparison.Ordinal);
        Assert.Contains("[2, 4]", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Compute_TwoBatches_TokenWeightedOverCorpusAndRestoresTrainMode()
    {
        torch.manual_seed(3);
        using var model = new TinyLm(vocab: 11, hidden: 4);
        model.train();
        using var b1 = Batch(new long[,] { { 1, 2, 3 }, { 4, 5, 6 } }, new long[,] { { 2, 3, -100 }, { 5, -100, -100 } });
        using var b2 = Batch(new long[,] { { 7, 8, 9 } }, new long[,] { { 8, 9, 10 } });

        var result = Perplexity.Compute(model, [b1, b2]);

        // Reference: the same NLL summed by hand over log_softmax of the model's logits, 3 + 3 scored tokens.
        double expected = 0;
        using (torch.no_grad())
        {
            foreach (var (ids, labels) in new[] { (b1.InputIds, b1.Labels), (b2.InputIds, b2.Labels) })
            {
                using var scope = torch.NewDisposeScope();
                var logProbs = nn.functional.log_softmax(model.call(ids), -1);
                for (var b = 0; b < labels.shape[0]; b++)
                {
                    for (var t = 0; t < labels.shape[1]; t++)
                    {
                        var label = labels[b, t].item<long>();
                        if (label != -100)
                        {
                            expected -= logProbs[b, t, label].item<float>();
                        }
                    }
                }
            }
        }

        Assert.Equal(6, result.TokenCount);
        Assert.Equal(expected, result.TotalNll, 4);
        Assert.Equal(Math.Exp(expected / 6), result.Perplexity, 4);
        Assert.True(model.training);
    }

    [Fact]
    public void Compute_RepeatedOverBatches_NoTensorLeak()
    {
        foreach (var device in TestRuntime.Devices())
        {
            torch.manual_seed(4);
            using var model = new TinyLm(vocab: 9, hidden: 3);
            model.to(device);
            using var batch = Batch(new long[,] { { 1, 2, 3, 4 } }, new long[,] { { 2, 3, 4, -100 } }).To(device);
            var first = Perplexity.Compute(model, [batch]);
            var before = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
            for (var i = 0; i < 10; i++)
            {
                Assert.Equal(first.TotalNll, Perplexity.Compute(model, [batch, batch]).TotalNll / 2, 4);
            }

            Assert.Equal(before, DisposeScopeManager.Statistics.ThreadTotalLiveCount);
        }
    }

    private static DistillationBatch Batch(long[,] ids, long[,] labels) => new()
    {
        InputIds = torch.tensor(ids),
        AttentionMask = torch.ones_like(torch.tensor(ids)),
        Labels = torch.tensor(labels),
    };

    /// <summary>Embedding + linear head: the smallest ICausalLM.</summary>
    internal sealed class TinyLm : nn.Module<Tensor, Tensor>, ICausalLM
    {
        private readonly Embedding _embed;
        private readonly Linear _head;

        public TinyLm(int vocab, int hidden) : base(nameof(TinyLm))
        {
            _embed = nn.Embedding(vocab, hidden);
            _head = nn.Linear(hidden, vocab, hasBias: false);
            RegisterComponents();
            Config = new TinyConfig { ModelType = "tiny", VocabSize = vocab, HiddenSize = hidden, NumHiddenLayers = 0, NumAttentionHeads = 1, MaxPositionEmbeddings = 16 };
        }

        public CausalLMConfig Config { get; }

        public nn.Module Module => this;

        public Tensor LmHeadWeight => _head.weight!;

        public Tensor? LmHeadBias => null;

        public Tensor EmbeddingWeight => _embed.weight!;

        public CausalLMOutput Forward(CausalLMInput input) => new(forward(input.InputIds), null, null);

        public override Tensor forward(Tensor input) => _head.call(_embed.call(input));

        private sealed class TinyConfig : CausalLMConfig;
    }
}
