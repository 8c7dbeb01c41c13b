using static TorchSharp.torch;

namespace Distill.Losses.Tests;

/// <summary>
/// ATKD's output mask is (labels == −100) | (labels == pad_token_id) (distill_trainer.py; for OPT pad = EOS);
/// <see cref="AtkdOptions.MaskPadTokenId"/> reproduces it for every ATKD objective, chunked variants included.
/// </summary>
public sealed class AtkdPadMaskTests
{
    public static TheoryData<string> Names() => new()
    {
        ObjectiveNames.Atkd, ObjectiveNames.AtkdForward, ObjectiveNames.AtkdReverse, ObjectiveNames.AtkdJsd, ObjectiveNames.AtkdTvd, ObjectiveNames.AtkdDkd,
    };

    [Theory]
    [MemberData(nameof(Names))]
    public void Compute_MaskPadTokenId_EqualsLabelsWithPadSetToIgnore(string name)
    {
        using var scope = NewDisposeScope();
        const long pad = 2;
        var y = TestData.Labels(91, 2, 6, 9, (0, 0));
        y[0, 4] = tensor(pad);
        y[1, 1] = tensor(pad);
        y[1, 5] = tensor(pad);
        var manual = y.masked_fill(y.eq(pad), DistillationBatch.IgnoreIndex);
        var s = TestData.Logits(92, 2, 6, 9);
        var t = TestData.Logits(93, 2, 6, 9);
        var masked = DistillObjectives.Create(name, new LossesOptions { Atkd = { MaskPadTokenId = pad } }).Compute(TestData.Context(s, t, y));
        var expected = DistillObjectives.Create(name).Compute(TestData.Context(s, t, manual));
        var unmasked = DistillObjectives.Create(name).Compute(TestData.Context(s, t, y));
        Assert.Equal(TestData.Value(expected.LossSum), TestData.Value(masked.LossSum));
        Assert.Equal(expected.ScoredTokens.item<long>(), masked.ScoredTokens.item<long>());
        Assert.Equal(manual.ne(DistillationBatch.IgnoreIndex).sum().item<long>(), masked.ScoredTokens.item<long>());
        Assert.NotEqual(TestData.Value(unmasked.LossSum), TestData.Value(masked.LossSum));
    }

    [Fact]
    public void Compute_MaskPadTokenIdChunked_EqualsPlain()
    {
        using var scope = NewDisposeScope();
        var options = new LossesOptions { ChunkSize = 4, Atkd = { MaskPadTokenId = 3 } };
        var model = new TinyCausalLM(seed: 4, vocab: 9, hidden: 5);
        var y = TestData.Labels(94, 2, 5, 9);
        y[1, 2] = tensor(3L);
        var hidden = randn(2, 5, 5);
        var teacher = TestData.Logits(95, 2, 5, 9);
        var plain = DistillObjectives.Create(ObjectiveNames.AtkdForward, options).Compute(TestData.Context(nn.functional.linear(hidden, model.LmHeadWeight), teacher, y));
        var chunked = DistillObjectives.Create("atkd_forward_chunked", options).Compute(new ObjectiveContext
        {
            Batch = TestData.Batch(y),
            Student = new CausalLMOutput(null, hidden, null),
            Teacher = new TeacherOutput { Logits = teacher },
            StudentModel = model,
        });
        GoldenTests.AssertClose(TestData.Value(plain.LossSum), TestData.Value(chunked.LossSum), 1e-5);
        Assert.Equal(plain.ScoredTokens.item<long>(), chunked.ScoredTokens.item<long>());
    }

    [Fact]
    public void Compute_Atkd_IsAPerMicroBatchMeanWithRealTokenCount()
    {
        // ATKD's groups have their own normalisers: the micro-batch loss is a mean (normaliser 1), the token count is real.
        using var scope = NewDisposeScope();
        var y = TestData.Labels(96, 2, 4, 7, (0, 3));
        var r = DistillObjectives.Create(ObjectiveNames.Atkd).Compute(TestData.Context(TestData.Logits(97, 2, 4, 7), TestData.Logits(98, 2, 4, 7), y));
        Assert.Equal(1f, r.Normalizer.item<float>());
        Assert.Equal(7L, r.ScoredTokens.item<long>());
        Assert.Equal(7f, r.Metrics["easy_tokens"].item<float>() + r.Metrics["hard_tokens"].item<float>());
    }
}
