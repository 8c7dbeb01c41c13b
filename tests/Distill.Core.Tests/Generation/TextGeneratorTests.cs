using Distill.Core.Tests.Models;
using Distill.Generation;
using TorchSharp;
using static TorchSharp.torch;

namespace Distill.Core.Tests.Generation;

public class TextGeneratorTests
{
    private static (Tensor Ids, Tensor Mask) LeftPadded(long[][] prompts, long pad = 0)
    {
        var width = prompts.Max(p => p.Length);
        var ids = new long[prompts.Length * width];
        var mask = new long[prompts.Length * width];
        for (var b = 0; b < prompts.Length; b++)
        {
            var offset = width - prompts[b].Length;
            for (var t = 0; t < width; t++)
            {
                ids[(b * width) + t] = t < offset ? pad : prompts[b][t - offset];
                mask[(b * width) + t] = t < offset ? 0 : 1;
            }
        }

        return (torch.tensor(ids).reshape(prompts.Length, width), torch.tensor(mask).reshape(prompts.Length, width));
    }

    private static readonly long[][] Prompts = [[5, 17, 3, 9], [11, 2], [7, 7, 30, 1, 4, 8]];

    [Theory]
    [InlineData("gpt2")]
    [InlineData("llama")]
    [InlineData("mistral")]
    [InlineData("qwen2")]
    public void Generate_WithCache_EqualsFullRecompute(string name)
    {
        using var scope = torch.NewDisposeScope();
        using var model = TinyModels.Create(name);
        var (ids, mask) = LeftPadded(Prompts);
        // 10 new tokens: Mistral's window (5) is crossed, so cached sliding-window masking is exercised too.
        var cached = TextGenerator.Generate(model, ids, mask, new GenerationOptions { MaxNewTokens = 10, UseCache = true });
        var full = TextGenerator.Generate(model, ids, mask, new GenerationOptions { MaxNewTokens = 10, UseCache = false });
        Assert.Equal(full.GeneratedIds.data<long>().ToArray(), cached.GeneratedIds.data<long>().ToArray());
        ModelParityTests.AssertClose(full.LogProbs, cached.LogProbs, name, 1e-5);
        Assert.Equal(new long[] { 3, 16 }, cached.Sequences.shape);
    }

    [Theory]
    [InlineData("gpt2")]
    [InlineData("llama")]
    [InlineData("mistral")]
    [InlineData("qwen2")]
    public void Generate_LeftPaddedBatch_EqualsEachRowAlone(string name)
    {
        using var scope = torch.NewDisposeScope();
        using var model = TinyModels.Create(name);
        var (ids, mask) = LeftPadded(Prompts);
        var batched = TextGenerator.Generate(model, ids, mask, new GenerationOptions { MaxNewTokens = 8 });
        for (var b = 0; b < Prompts.Length; b++)
        {
            var p = torch.tensor(Prompts[b]).unsqueeze(0);
            var alone = TextGenerator.Generate(model, p, torch.ones_like(p), new GenerationOptions { MaxNewTokens = 8 });
            Assert.Equal(alone.GeneratedIds[0].data<long>().ToArray(), batched.GeneratedIds[b].data<long>().ToArray());
            ModelParityTests.AssertClose(alone.LogProbs[0], batched.LogProbs[b], $"{name} row {b}");
        }
    }

    [Fact]
    public void Generate_Sampling_LogProbsAreUnprocessedModelDistribution()
    {
        using var scope = torch.NewDisposeScope();
        using var model = TinyModels.Create("llama");
        var (ids, mask) = LeftPadded(Prompts);
        var options = new GenerationOptions { MaxNewTokens = 6, DoSample = true, Temperature = 0.7, TopK = 5, TopP = 0.9, Seed = 3 };
        var r = TextGenerator.Generate(model, ids, mask, options);

        // Teacher-forced check: one forward over the final sequences (generate-style positions), log_softmax at temperature 1,
        // gathered at the chosen tokens, must equal the reported log-probs.
        var fullMask = torch.cat([mask, torch.ones(3, 6, ScalarType.Int64)], 1);
        var pos = (fullMask.cumsum(-1) - 1).masked_fill(fullMask.eq(0), 1);
        using var noGrad = torch.no_grad();
        var logits = model.Forward(new CausalLMInput { InputIds = r.Sequences, AttentionMask = fullMask, PositionIds = pos }).Logits!;
        var p = ids.shape[1];
        var expected = logits[.., (int)(p - 1)..^1, ..].log_softmax(-1).gather(2, r.GeneratedIds.unsqueeze(-1)).squeeze(-1);
        ModelParityTests.AssertClose(expected, r.LogProbs, "teacher-forced log-probs");
    }

    [Fact]
    public void Generate_SameSeed_SameTokens_TopK1_EqualsGreedy()
    {
        using var scope = torch.NewDisposeScope();
        using var model = TinyModels.Create("gpt2");
        var (ids, mask) = LeftPadded(Prompts);
        GenerationOptions Sampling(long seed) => new() { MaxNewTokens = 12, DoSample = true, Temperature = 1.5, Seed = seed };
        var a = TextGenerator.Generate(model, ids, mask, Sampling(1)).GeneratedIds.data<long>().ToArray();
        var b = TextGenerator.Generate(model, ids, mask, Sampling(1)).GeneratedIds.data<long>().ToArray();
        var c = TextGenerator.Generate(model, ids, mask, Sampling(2)).GeneratedIds.data<long>().ToArray();
        Assert.Equal(a, b);
        Assert.NotEqual(a, c); // 36 draws at T = 1.5 over 61 tokens: equal only with negligible probability

        var greedy = TextGenerator.Generate(model, ids, mask, new GenerationOptions { MaxNewTokens = 12 }).GeneratedIds.data<long>().ToArray();
        var topK1 = TextGenerator.Generate(model, ids, mask, new GenerationOptions { MaxNewTokens = 12, DoSample = true, TopK = 1, Seed = 9 }).GeneratedIds.data<long>().ToArray();
        var tinyP = TextGenerator.Generate(model, ids, mask, new GenerationOptions { MaxNewTokens = 12, DoSample = true, TopP = 1e-6, Seed = 9 }).GeneratedIds.data<long>().ToArray();
        Assert.Equal(greedy, topK1);
        Assert.Equal(greedy, tinyP);
    }

    [Fact]
    public void Generate_Eos_StopsRowAndPadsAfter()
    {
        using var scope = torch.NewDisposeScope();
        using var model = TinyModels.Create("qwen2");
        var (ids, mask) = LeftPadded(Prompts);
        var free = TextGenerator.Generate(model, ids, mask, new GenerationOptions { MaxNewTokens = 8 });
        var row0 = free.GeneratedIds[0].data<long>().ToArray();
        var eos = row0[2]; // make row 0's third token the EOS
        var firstEos = Array.IndexOf(row0, eos);

        var r = TextGenerator.Generate(model, ids, mask, new GenerationOptions { MaxNewTokens = 8, EosTokenIds = [eos], PadTokenId = 70 });
        var got = r.GeneratedIds[0].data<long>().ToArray();
        Assert.Equal(row0[..(firstEos + 1)], got[..(firstEos + 1)]);
        Assert.All(got[(firstEos + 1)..], t => Assert.Equal(70L, t));
        Assert.Equal(firstEos + 1, r.Lengths[0]);
        Assert.True(r.Stopped[0]);
        Assert.All(r.LogProbs[0].data<float>().ToArray()[(firstEos + 1)..], lp => Assert.Equal(0f, lp));
        Assert.True(r.LogProbs[0, ..(firstEos + 1)].lt(0).all().item<bool>());
    }

    [Fact]
    public void Generate_StopSequence_StopsWhenDecodedTextContainsIt()
    {
        using var scope = torch.NewDisposeScope();
        using var model = TinyModels.Create("llama");
        var p = torch.tensor(new long[] { 4, 8, 15 }).unsqueeze(0);
        var free = TextGenerator.Generate(model, p, torch.ones_like(p), new GenerationOptions { MaxNewTokens = 8 }).GeneratedIds[0].data<long>().ToArray();
        static string Decode(IReadOnlyList<long> ids) => string.Concat(ids.Select(i => $"<{i}>"));
        var stop = $"<{free[2]}><{free[3]}>";
        var expectedLength = Enumerable.Range(1, free.Length).First(n => Decode(free[..n]).Contains(stop, StringComparison.Ordinal));

        var r = TextGenerator.Generate(model, p, torch.ones_like(p), new GenerationOptions { MaxNewTokens = 8, StopSequences = [stop], Decode = Decode });
        Assert.Equal(expectedLength, r.Lengths[0]);
        Assert.Equal(expectedLength, r.GeneratedIds.shape[1]); // the only row stopped, so decoding ended
        Assert.Equal(free[..expectedLength], r.GeneratedIds[0].data<long>().ToArray());
        Assert.Throws<ArgumentException>(() => TextGenerator.Generate(model, p, torch.ones_like(p), new GenerationOptions { StopSequences = ["x"] }));
    }

    [Fact]
    public void Sample_TopKAndTopP_DrawOnlyFromKeptTokens()
    {
        using var scope = torch.NewDisposeScope();
        // probs [0.5, 0.3, 0.15, 0.05] (logits = log probs).
        var logits = torch.tensor(new[] { 0.5f, 0.3f, 0.15f, 0.05f }).log().unsqueeze(0).expand(400, 4);
        using var g = new Generator(5);
        // top-k 2 keeps tokens 0 and 1.
        var k = TextGenerator.Sample(logits, new GenerationOptions { DoSample = true, TopK = 2 }, g);
        Assert.True(k.lt(2).all().item<bool>());
        // top-p 0.7: ascending cumulative [0.05, 0.2, 0.5, 1.0]; drop those <= 0.3 -> tokens 3 and 2 go, 0 and 1 stay.
        var p = TextGenerator.Sample(logits, new GenerationOptions { DoSample = true, TopP = 0.7 }, g);
        Assert.True(p.lt(2).all().item<bool>());
        Assert.True(p.eq(1).any().item<bool>()); // token 1 (p = 0.3 / 0.8) is drawn in 400 tries
        // No filtering: all four appear.
        var all = TextGenerator.Sample(logits, new GenerationOptions { DoSample = true }, g);
        Assert.Equal(4, all.unique().Item1.shape[0]);
    }

    [Fact]
    public void Generate_RestoresTrainingModeAndLeavesNoLiveTensors()
    {
        using var model = TinyModels.Create("gpt2");
        model.train();
        var (ids, mask) = LeftPadded(Prompts);
        using (var warm = TextGenerator.Generate(model, ids, mask, new GenerationOptions { MaxNewTokens = 4 }))
        {
        }

        Assert.True(model.training);
        var before = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        for (var i = 0; i < 3; i++)
        {
            using var r = TextGenerator.Generate(model, ids, mask, new GenerationOptions { MaxNewTokens = 6, DoSample = true, Seed = i });
        }

        Assert.Equal(before, DisposeScopeManager.Statistics.ThreadTotalLiveCount);
        ids.Dispose();
        mask.Dispose();
    }

    [Fact]
    public void Generate_WithoutMask_EqualsAllOnesMask()
    {
        using var scope = torch.NewDisposeScope();
        using var model = TinyModels.Create("llama");
        var ids = torch.tensor(new long[] { 5, 17, 3, 9, 11, 2, 7, 30 }).reshape(2, 4);
        var options = new GenerationOptions { MaxNewTokens = 6, DoSample = true, Seed = 3, TopK = 5 };
        var withMask = TextGenerator.Generate(model, ids, torch.ones_like(ids), options);
        var withoutMask = TextGenerator.Generate(model, ids, options);
        Assert.Equal(withMask.GeneratedIds.data<long>().ToArray(), withoutMask.GeneratedIds.data<long>().ToArray());
        Assert.Equal(withMask.LogProbs.data<float>().ToArray(), withoutMask.LogProbs.data<float>().ToArray());
    }

    [Fact]
    public void Generate_BatchWithStopStringsButNoPadOrEos_ThrowsNamingPadTokenId()
    {
        using var scope = torch.NewDisposeScope();
        using var model = TinyModels.Create("gpt2");
        var ids = torch.tensor(new long[] { 5, 17, 3, 9 }).reshape(2, 2);
        static string Decode(IReadOnlyList<long> t) => string.Join(" ", t);
        var ex = Assert.Throws<ArgumentException>(() => TextGenerator.Generate(model, ids, new GenerationOptions { MaxNewTokens = 4, StopSequences = ["1"], Decode = Decode }));
        Assert.Contains("PadTokenId", ex.Message, StringComparison.Ordinal);
        Assert.Contains("2 rows", ex.Message, StringComparison.Ordinal);

        // With a pad id, or with one row (it never waits for another), the same call runs.
        TextGenerator.Generate(model, ids, new GenerationOptions { MaxNewTokens = 4, StopSequences = ["1"], Decode = Decode, PadTokenId = 0 }).Dispose();
        TextGenerator.Generate(model, ids[..1], new GenerationOptions { MaxNewTokens = 4, StopSequences = ["1"], Decode = Decode }).Dispose();
    }
}
