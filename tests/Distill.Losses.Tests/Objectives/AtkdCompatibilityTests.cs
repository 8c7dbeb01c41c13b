using static TorchSharp.torch;

namespace Distill.Losses.Tests;

/// <summary>ATKD's defects: intended behaviour by default, official behaviour behind Atkd.OfficialCompatibility.</summary>
public sealed class AtkdCompatibilityTests
{
    [Fact]
    public void AtkdDkd_OfficialCompatibility_ThrowsLikeTheOfficialTypeError()
    {
        using var scope = NewDisposeScope();
        var y = TestData.Labels(51, 1, 3, 5);
        var ctx = TestData.Context(TestData.Logits(52, 1, 3, 5), TestData.Logits(53, 1, 3, 5), y);
        var ex = Assert.Throws<NotSupportedException>(() => TestData.Create(ObjectiveNames.AtkdDkd, o => o.Atkd.OfficialCompatibility = true).Compute(ctx));
        Assert.Contains("TypeError", ex.Message, StringComparison.Ordinal);
        Assert.True(TestData.Value(TestData.Create(ObjectiveNames.AtkdDkd).Compute(ctx).LossSum) > 0);
    }

    [Fact]
    public void AtkdDkd_AlphaBeta_WeighTckdAndNckd()
    {
        using var scope = NewDisposeScope();
        var y = TestData.Labels(54, 2, 3, 6, (0, 2));
        var ctx = TestData.Context(TestData.Logits(55, 2, 3, 6), TestData.Logits(56, 2, 3, 6), y);
        var r = TestData.Create(ObjectiveNames.AtkdDkd, o =>
        {
            o.Atkd.Alpha = 0.7;
            o.Atkd.Beta = 3.0;
        }).Compute(ctx);
        GoldenTests.AssertClose(0.7 * TestData.Value(r.Metrics["tckd"]) + 3.0 * TestData.Value(r.Metrics["nckd"]), TestData.Value(r.LossSum));
    }

    [Fact]
    public void AtkdTvd_NoIgnoredPositions_OfficialIsNaNIntendedIsFinite()
    {
        // Official get_tvd averages the rows where the padding mask is true; with none, mean([]) = NaN.
        using var scope = NewDisposeScope();
        var y = TestData.Labels(57, 2, 3, 6);
        var ctx = TestData.Context(TestData.Logits(58, 2, 3, 6), TestData.Logits(59, 2, 3, 6), y);
        var official = TestData.Create(ObjectiveNames.AtkdTvd, o => o.Atkd.OfficialCompatibility = true).Compute(ctx);
        Assert.True(double.IsNaN(TestData.Value(official.LossSum)));
        Assert.Equal(0, official.ScoredTokens.item<long>());
        var intended = TestData.Create(ObjectiveNames.AtkdTvd).Compute(ctx);
        Assert.Equal(6, intended.ScoredTokens.item<long>());
        Assert.InRange(TestData.Value(intended.LossSum), 0.0, 6.0);
    }

    [Fact]
    public void Atkd_EmptyEasyGroup_OfficialIsNaNIntendedDropsGroup()
    {
        // One scored token: the median is that token's uncertainty, "easy" (strictly below) is empty → 0/0 in ATKD.
        using var scope = NewDisposeScope();
        var y = full(1, 3, DistillationBatch.IgnoreIndex, dtype: ScalarType.Int64);
        y[0, 1] = tensor(4L);
        var s = TestData.Logits(60, 1, 3, 8);
        var t = TestData.Logits(61, 1, 3, 8);
        var ctx = TestData.Context(s, t, y);
        var official = TestData.Create(ObjectiveNames.Atkd, o => o.Atkd.OfficialCompatibility = true).Compute(ctx);
        Assert.True(double.IsNaN(TestData.Value(official.LossSum)));
        var intended = TestData.Create(ObjectiveNames.Atkd).Compute(ctx);
        Assert.Equal(1, intended.ScoredTokens.item<long>());
        // Only the hard group remains: (1 − α)·(TCKD + NCKD) of that token, α = 0.2.
        var (tckd, nckd) = Dkd.PerToken(s, t, y);
        GoldenTests.AssertClose(0.8 * (tckd[0, 1].item<float>() + nckd[0, 1].item<float>()), TestData.Value(intended.LossSum));
        Assert.Equal(0f, intended.Metrics["easy_tokens"].item<float>());
        Assert.Equal(1f, intended.Metrics["hard_tokens"].item<float>());
    }

    [Fact]
    public void AtkdJsd_OfficialCompatibility_IsWeightedForwardPlusReverse()
    {
        using var scope = NewDisposeScope();
        var y = TestData.Labels(62, 2, 3, 6, (1, 1));
        var ctx = TestData.Context(TestData.Logits(63, 2, 3, 6), TestData.Logits(64, 2, 3, 6), y);
        var official = TestData.Value(TestData.Create(ObjectiveNames.AtkdJsd, o => o.Atkd.OfficialCompatibility = true).Compute(ctx).LossSum);
        var fwd = TestData.Value(TestData.Create(ObjectiveNames.AtkdForward).Compute(ctx).LossSum);
        var rev = TestData.Value(TestData.Create(ObjectiveNames.AtkdReverse).Compute(ctx).LossSum);
        GoldenTests.AssertClose(0.9 * fwd + 0.1 * rev, official);
        var intended = TestData.Value(TestData.Create(ObjectiveNames.AtkdJsd).Compute(ctx).LossSum);
        Assert.InRange(intended, 0.0, 5 * Math.Log(2) + 1e-6); // a true JSD is at most ln 2 per token
    }
}
