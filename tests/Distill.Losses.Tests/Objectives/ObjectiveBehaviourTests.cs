using static TorchSharp.torch;

namespace Distill.Losses.Tests;

/// <summary>Masking, empty masks, bf16 inputs and the contract of every registered logits-based objective.</summary>
public sealed class ObjectiveBehaviourTests
{
    public static TheoryData<string> LogitObjectives() => new()
    {
        ObjectiveNames.ForwardKl, ObjectiveNames.ReverseKl, ObjectiveNames.JsDivergence, ObjectiveNames.SkewedForwardKl,
        ObjectiveNames.SkewedReverseKl, ObjectiveNames.AdaptiveKl, ObjectiveNames.AtkdForward, ObjectiveNames.AtkdReverse,
        ObjectiveNames.AtkdJsd, ObjectiveNames.AtkdTvd, ObjectiveNames.AtkdDkd, ObjectiveNames.Atkd, ObjectiveNames.GkdJsd,
        ObjectiveNames.Sft, ObjectiveNames.SeqKd,
    };

    [Theory]
    [MemberData(nameof(LogitObjectives))]
    public void Compute_LogitsChangedAtIgnoredPositions_ChangesNothing(string name)
    {
        using var scope = NewDisposeScope();
        var y = TestData.Labels(31, 2, 5, 11, (0, 0), (0, 1), (1, 4));
        var s = TestData.Logits(32, 2, 5, 11);
        var t = TestData.Logits(33, 2, 5, 11, 3.0);
        var objective = TestData.Create(name);
        var sl = s.clone().requires_grad_(true);
        var r1 = objective.Compute(TestData.Context(sl, t, y));
        r1.LossSum.backward();
        var s2 = s.clone();
        var t2 = t.clone();
        foreach (var (b, p) in new[] { (0L, 0L), (0L, 1L), (1L, 4L) })
        {
            s2[b, p] = randn(11) * 40;
            t2[b, p] = randn(11) * 40;
        }

        var sl2 = s2.requires_grad_(true);
        var r2 = objective.Compute(TestData.Context(sl2, t2, y));
        r2.LossSum.backward();
        Assert.Equal(7, r1.ScoredTokens.item<long>());
        Assert.Equal(r1.ScoredTokens.item<long>(), r2.ScoredTokens.item<long>());
        GoldenTests.AssertClose(TestData.Value(r1.LossSum), TestData.Value(r2.LossSum), 1e-6);
        var valid = TokenReduction.ValidMask(y).unsqueeze(-1);
        Assert.True((sl.grad! - sl2.grad!).masked_fill(valid.logical_not(), 0).abs().max().item<float>() < 1e-6f);
        Assert.Equal(0f, sl2.grad!.masked_fill(valid, 0).abs().max().item<float>()); // no gradient into ignored positions
    }

    [Theory]
    [MemberData(nameof(LogitObjectives))]
    public void Compute_AllPositionsIgnored_ReturnsZeroNotNaN(string name)
    {
        using var scope = NewDisposeScope();
        var y = full(2, 3, DistillationBatch.IgnoreIndex, dtype: ScalarType.Int64);
        var s = TestData.Logits(34, 2, 3, 7).requires_grad_(true);
        var r = TestData.Create(name).Compute(TestData.Context(s, TestData.Logits(35, 2, 3, 7), y));
        Assert.Equal(0, r.ScoredTokens.item<long>());
        Assert.Equal(0.0, TestData.Value(r.LossSum));
        Assert.Equal(0.0, TestData.Value(TokenReduction.Normalize(r.LossSum, r.ScoredTokens.item<long>())));
        r.LossSum.backward();
        Assert.Equal(0f, s.grad!.abs().max().item<float>());
    }

    [Theory]
    [MemberData(nameof(LogitObjectives))]
    public void Compute_Bf16Logits_ComputesInFloat32CloseToFloat32Inputs(string name)
    {
        using var scope = NewDisposeScope();
        var y = TestData.Labels(36, 2, 4, 23, (1, 3));
        var s = TestData.Logits(37, 2, 4, 23).to(ScalarType.BFloat16);
        var t = TestData.Logits(38, 2, 4, 23).to(ScalarType.BFloat16);
        var objective = TestData.Create(name);
        var bf = objective.Compute(TestData.Context(s, t, y));
        var f32 = objective.Compute(TestData.Context(s.to(ScalarType.Float32), t.to(ScalarType.Float32), y));
        Assert.Equal(ScalarType.Float32, bf.LossSum.dtype);
        // Same bf16-representable values, computed in fp32 either way: equal up to fp32 rounding.
        GoldenTests.AssertClose(TestData.Value(f32.LossSum), TestData.Value(bf.LossSum), 1e-5);
    }

    [Theory]
    [MemberData(nameof(LogitObjectives))]
    public void Compute_Always_ReturnsScalarWithGradAndDetachedMetrics(string name)
    {
        using var scope = NewDisposeScope();
        var y = TestData.Labels(39, 2, 4, 9, (0, 0));
        var s = TestData.Logits(40, 2, 4, 9).requires_grad_(true);
        var r = TestData.Create(name).Compute(TestData.Context(s, TestData.Logits(41, 2, 4, 9), y));
        Assert.Equal(0, r.LossSum.dim());
        Assert.True(r.LossSum.requires_grad);
        Assert.NotEmpty(r.Metrics);
        Assert.All(r.Metrics.Values, m => Assert.False(m.requires_grad));
        Assert.Equal(name, TestData.Create(name).Name);
    }

    [Fact]
    public void Compute_DskdKdRate_MixesCeAndKdLinearly()
    {
        using var scope = NewDisposeScope();
        var y = TestData.Labels(42, 2, 4, 9, (0, 0));
        var ctx = TestData.Context(TestData.Logits(43, 2, 4, 9), TestData.Logits(44, 2, 4, 9), y);
        var r0 = TestData.Create(ObjectiveNames.ReverseKl, o => o.Divergence.KdRate = 0).Compute(ctx);
        var r1 = TestData.Create(ObjectiveNames.ReverseKl, o => o.Divergence.KdRate = 1).Compute(ctx);
        var r3 = TestData.Create(ObjectiveNames.ReverseKl, o => o.Divergence.KdRate = 0.3).Compute(ctx);
        GoldenTests.AssertClose(TestData.Value(r0.Metrics["ce"]), TestData.Value(r0.LossSum));
        GoldenTests.AssertClose(TestData.Value(r1.Metrics["kd"]), TestData.Value(r1.LossSum));
        GoldenTests.AssertClose(0.7 * TestData.Value(r0.LossSum) + 0.3 * TestData.Value(r1.LossSum), TestData.Value(r3.LossSum));
    }
}
