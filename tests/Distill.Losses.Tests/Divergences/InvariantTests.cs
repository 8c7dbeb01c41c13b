using static TorchSharp.torch;

namespace Distill.Losses.Tests;

/// <summary>Mathematical invariants of the per-token divergences on random inputs (B, T, V) = (3, 5, 17).</summary>
public sealed class InvariantTests
{
    public static TheoryData<string> AllDivergences() => new()
    {
        "forward_kl", "reverse_kl", "js", "skl", "srkl", "akl", "tvd", "gjsd", "tckd", "nckd",
    };

    [Theory]
    [MemberData(nameof(AllDivergences))]
    public void PerToken_RandomLogits_IsNonNegative(string name)
    {
        using var scope = NewDisposeScope();
        var d = Divergence(name, TestData.Logits(1, 3, 5, 17), TestData.Logits(2, 3, 5, 17, 3.0), 2.0);
        Assert.Equal(new long[] { 3, 5 }, d.shape);
        Assert.True(d.min().item<float>() >= -1e-6f, $"{name} min = {d.min().item<float>()}");
    }

    [Theory]
    [MemberData(nameof(AllDivergences))]
    public void PerToken_IdenticalLogits_ReturnsZero(string name)
    {
        using var scope = NewDisposeScope();
        var x = TestData.Logits(3, 3, 5, 17);
        var d = Divergence(name, x, x.clone(), 1.5);
        Assert.True(d.abs().max().item<float>() < 1e-5f, $"{name}(p, p) max = {d.abs().max().item<float>()}");
        Assert.False(d.isnan().any().item<bool>()); // AKL: DSKD divides 0/0 here
    }

    [Theory]
    [InlineData("js")]
    [InlineData("gjsd")]
    [InlineData("tvd")]
    public void PerToken_SwappedArguments_IsSymmetric(string name)
    {
        using var scope = NewDisposeScope();
        var a = TestData.Logits(4, 3, 5, 17);
        var b = TestData.Logits(5, 3, 5, 17, 3.0);
        var ab = Divergence(name, a, b, 1.0);
        var ba = Divergence(name, b, a, 1.0);
        Assert.True((ab - ba).abs().max().item<float>() < 1e-5f);
    }

    [Fact]
    public void TotalVariation_ExtremeLogits_IsAtMostOnePerToken()
    {
        using var scope = NewDisposeScope();
        var d = TotalVariation.PerToken(TestData.Logits(6, 3, 5, 17, 50.0), TestData.Logits(7, 3, 5, 17, 50.0));
        Assert.True(d.max().item<float>() <= 1f + 1e-6f);
        Assert.True(d.max().item<float>() > 0.9f); // near-one-hot disagreeing distributions are near 1 apart
    }

    [Fact]
    public void GeneralizedJsd_BetaEnds_EqualForwardAndReverseKl()
    {
        using var scope = NewDisposeScope();
        var s = TestData.Logits(8, 2, 3, 11);
        var t = TestData.Logits(9, 2, 3, 11);
        Assert.True((GeneralizedJsd.PerToken(s, t, 0.0) - ForwardKl.PerToken(s, t)).abs().max().item<float>() < 1e-6f);
        Assert.True((GeneralizedJsd.PerToken(s, t, 1.0) - ReverseKl.PerToken(s, t)).abs().max().item<float>() < 1e-6f);
        // β → 0 and β → 1 of the mixture branch approach them continuously (JSD(β)/β → KL(p||q) is not claimed; only the limits of the value).
        Assert.True((GeneralizedJsd.PerToken(s, t, 0.5) - GeneralizedJsd.PerToken(t, s, 0.5)).abs().max().item<float>() < 1e-5f);
    }

    [Fact]
    public void Dkd_WeightedNckdPlusTckd_EqualsForwardKl()
    {
        // Exact DKD decomposition: KL(p||q) = TCKD + p_t(non-target)·NCKD (the weighting ATKD leaves commented out).
        using var scope = NewDisposeScope();
        var s = TestData.Logits(10, 2, 4, 9);
        var t = TestData.Logits(11, 2, 4, 9);
        var y = TestData.Labels(12, 2, 4, 9);
        var (tckd, nckd) = Dkd.PerToken(s, t, y);
        var weight = Dkd.NonTargetMass(t, y);
        Assert.True((tckd + weight * nckd - ForwardKl.PerToken(s, t)).abs().max().item<float>() < 1e-5f);
    }

    [Theory]
    [MemberData(nameof(AllDivergences))]
    public void PerToken_NegativeInfinityAndHugeLogits_AreFinite(string name)
    {
        using var scope = NewDisposeScope();
        var s = TestData.Logits(13, 2, 3, 11) * 1e4f; // huge: softmax saturates to one-hot
        var t = TestData.Logits(14, 2, 3, 11);
        s[0, 0, 3] = tensor(float.NegativeInfinity);  // masked vocabulary entries
        t[1, 2, 5] = tensor(float.NegativeInfinity);
        t[0, 1, 7] = tensor(float.NegativeInfinity);
        var sl = s.requires_grad_(true);
        var d = Divergence(name, sl, t, 1.0);
        Assert.True(d.isfinite().all().item<bool>(), $"{name}: {d}");
        d.sum().backward();
        Assert.True(sl.grad!.isfinite().all().item<bool>(), $"{name}: non-finite gradient");
    }

    internal static Tensor Divergence(string name, Tensor s, Tensor t, double temperature) => name switch
    {
        "forward_kl" => ForwardKl.PerToken(s, t, temperature),
        "reverse_kl" => ReverseKl.PerToken(s, t, temperature),
        "js" => JsDivergence.PerToken(s, t, temperature),
        "skl" => SkewKl.Forward(s, t, 0.1, temperature),
        "srkl" => SkewKl.Reverse(s, t, 0.1, temperature),
        "akl" => AdaptiveKl.PerToken(s, t, 0.5, temperature),
        "tvd" => TotalVariation.PerToken(s, t, temperature, temperature),
        "gjsd" => GeneralizedJsd.PerToken(s, t, 0.5, temperature),
        "tckd" => Dkd.PerToken(s, t, Targets(s), temperature, temperature).Tckd,
        "nckd" => Dkd.PerToken(s, t, Targets(s), temperature, temperature).Nckd,
        _ => throw new ArgumentException(name),
    };

    private static Tensor Targets(Tensor s) => TestData.Labels(99, s.shape[0], s.shape[1], s.shape[2]);
}
