using Distill.Models;
using static TorchSharp.torch;

namespace Distill.Data.Tests.TeacherCache;

/// <summary>The local-model producer (host and torch scoring, blocks, position runs) and the host top-k kernel.</summary>
public sealed class TopKProducerTests
{
    private const int Vocab = 300;

    private static CausalLM Model() => AutoCausalLM.FromConfig(new Gpt2Config
    {
        ModelType = "gpt2", VocabSize = Vocab, HiddenSize = 32, NumHiddenLayers = 1, NumAttentionHeads = 2, MaxPositionEmbeddings = 32,
    }, seed: 5);

    /// <summary>Rows of different lengths; scored positions with gaps (several runs), a full row, an empty one.</summary>
    private static TeacherCacheExample[] Examples() =>
    [
        new(0, [5, 9, 17, 3, 250, 44, 8, 1, 2, 99], [1, 2, 3, 6, 7, 9]),
        new(1, [7, 7, 7, 7], [0, 1, 2, 3]),
        new(2, [12, 200], []),
        new(3, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13], [4, 5, 6, 7, 8, 9, 10, 11, 12]),
    ];

    [Theory]
    [InlineData(true, 1L << 24)]
    [InlineData(true, 3 * Vocab)]
    [InlineData(false, 1L << 24)]
    [InlineData(false, 2 * Vocab)]
    public async Task Produce_MatchesLogSoftmaxTopKOfTheBatchForward(bool host, long block)
    {
        using var scope = NewDisposeScope();
        using var model = Model();
        var examples = Examples();
        var producer = new LocalModelTopKProducer(model, "tiny", block, host);
        var results = await producer.ProduceAsync(examples, 8, CancellationToken.None);

        // Reference: the same right-padded batch, log_softmax, top-k, and log(1 − Σ top-k p) in float64.
        using var noGrad = no_grad();
        var width = examples.Max(e => e.InputIds.Count);
        var ids = new long[examples.Length * width];
        var mask = new long[examples.Length * width];
        for (var i = 0; i < examples.Length; i++)
        {
            for (var j = 0; j < examples[i].InputIds.Count; j++)
            {
                ids[(i * width) + j] = examples[i].InputIds[j];
                mask[(i * width) + j] = 1;
            }
        }

        var logProbs = model.Forward(new CausalLMInput { InputIds = tensor(ids, [examples.Length, width]), AttentionMask = tensor(mask, [examples.Length, width]) }).Logits!.log_softmax(-1);
        for (var i = 0; i < examples.Length; i++)
        {
            var r = results[i];
            r.Check(examples[i], 8, "tiny");
            for (var j = 0; j < examples[i].ScoredPositions.Count; j++)
            {
                var row = logProbs[i, examples[i].ScoredPositions[j]];
                var (values, indices) = row.topk(8);
                Assert.Equal(indices.data<long>().ToArray().Select(x => (int)x), r.Ids.Skip(j * 8).Take(8));
                var expected = values.data<float>().ToArray();
                for (var x = 0; x < 8; x++)
                {
                    Assert.True(Math.Abs(expected[x] - r.LogProbs[(j * 8) + x]) < 1e-5, $"row {i} position {examples[i].ScoredPositions[j]} entry {x}: {r.LogProbs[(j * 8) + x]} vs {expected[x]}");
                }

                var tail = Math.Log(1 - expected.Sum(v => Math.Exp(v)));
                Assert.True(Math.Abs(tail - r.LogTailMass[j]) < 1e-4, $"row {i} position {examples[i].ScoredPositions[j]}: tail {r.LogTailMass[j]} vs {tail}");
            }
        }
    }

    [Fact]
    public void HostTopK_TiesInfinitiesAndTail_AreExact()
    {
        // 21 entries (two 8-wide blocks and a scalar remainder): ties at the k-th value, −∞ entries, and a tail far below
        // 1e-7 of the mass, which 1 − Σ top-k p in float32 would lose.
        var row = Enumerable.Repeat(-40f, 21).ToArray();
        row[3] = 2f;
        row[17] = 2f;   // tie with id 3 for the top: id 3 comes first
        row[20] = 1f;
        row[9] = 1f;    // tie at the k-th value: id 9 is kept, id 20 goes to the tail
        row[0] = float.NegativeInfinity;
        row[12] = float.NegativeInfinity;
        var ids = new int[3];
        var logProbs = new float[3];
        var tails = new float[1];
        HostTopK.Score(row, row.Length, 3, ids, logProbs, tails);
        Assert.Equal([3, 17, 9], ids);
        var total = (2 * Math.Exp(2)) + (2 * Math.Exp(1)) + (17 * Math.Exp(-40));
        var lse = Math.Log(total);
        double[] expected = [2 - lse, 2 - lse, 1 - lse];
        Assert.True(expected.Zip(logProbs, (a, b) => Math.Abs(a - b)).Max() < 1e-6, string.Join(", ", logProbs));
        var tail = Math.Log(Math.Exp(1) + (17 * Math.Exp(-40))) - lse;
        Assert.True(Math.Abs(tail - tails[0]) < 1e-6, $"tail {tails[0]} vs {tail}");

        // All of the mass in the top-k: the tail is −∞.
        HostTopK.Score([0f, float.NegativeInfinity, 1f, float.NegativeInfinity], 4, 2, ids.AsSpan(0, 2), logProbs.AsSpan(0, 2), tails);
        Assert.Equal([2, 0], ids[..2]);
        Assert.Equal(float.NegativeInfinity, tails[0]);
    }

    [Fact]
    public void HostTopK_ManyRows_MatchTorchAndSplitOverCores()
    {
        // 200 rows × 1000 random logits: enough rows for the parallel split.
        using var scope = NewDisposeScope();
        var logits = randn(200, 1000, generator: new TorchSharp.torch.Generator(11)) * 4;
        var data = logits.data<float>().ToArray();
        var ids = new int[200 * 16];
        var logProbs = new float[200 * 16];
        var tails = new float[200];
        HostTopK.Score(data, 1000, 16, ids, logProbs, tails);
        var lp = logits.log_softmax(-1);
        var (values, indices) = lp.topk(16);
        Assert.Equal(indices.data<long>().ToArray().Select(x => (int)x), ids);
        var expected = values.data<float>().ToArray();
        Assert.True(expected.Zip(logProbs, (a, b) => Math.Abs(a - b)).Max() < 1e-5);
        var rest = lp.scatter(-1, indices, full_like(values, double.NegativeInfinity)).logsumexp(-1).data<float>().ToArray();
        Assert.True(rest.Zip(tails, (a, b) => Math.Abs(a - b)).Max() < 1e-5);
    }

    [Fact]
    public void HostTopK_BoundAndHeapSelection_AgreeOnRowsWithTies()
    {
        // Values from a small set, so rows are full of ties at and around the k-th value.
        var rng = new Random(3);
        for (var trial = 0; trial < 50; trial++)
        {
            var v = 100 + rng.Next(900);
            var k = 1 + rng.Next(Math.Min(v, 80));
            var row = Enumerable.Range(0, v).Select(_ => (float)rng.Next(12)).ToArray();
            var scratch = HostTopK.Scratch.For(v, k);
            var (boundIds, boundValues, heapIds, heapValues) = (new int[k], new float[k], new int[k], new float[k]);
            Assert.True(HostTopK.SelectAboveBound(row, boundIds, boundValues, scratch));
            HostTopK.SelectByHeap(row, heapIds, heapValues, scratch.HeapValues, scratch.HeapIds);
            Assert.Equal(heapIds, boundIds);
            Assert.Equal(heapValues, boundValues);
            var expected = row.Select((x, i) => (x, i)).OrderByDescending(e => e.x).ThenBy(e => e.i).Take(k).Select(e => e.i);
            Assert.Equal(expected, boundIds);
        }
    }

    [Fact]
    public void HostTopK_NaNRow_GivesNaN()
    {
        float[] row = [0.5f, float.NaN, 0.25f, 0f, 1f, 2f, 3f, 4f, 5f];
        var ids = new int[2];
        var logProbs = new float[2];
        var tails = new float[1];
        HostTopK.Score(row, row.Length, 2, ids, logProbs, tails);
        Assert.True(float.IsNaN(tails[0]));
        Assert.All(logProbs, v => Assert.True(float.IsNaN(v)));
    }
}
