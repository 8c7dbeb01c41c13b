using static TorchSharp.torch;

namespace Distill.Losses.Tests;

/// <summary>Autograd gradients of every divergence against central finite differences, in float64 on a tiny case (2, 3, 7).</summary>
public sealed class GradientTests
{
    [Theory]
    [MemberData(nameof(InvariantTests.AllDivergences), MemberType = typeof(InvariantTests))]
    public void PerToken_Autograd_MatchesFiniteDifferences(string name)
    {
        using var scope = NewDisposeScope();
        var s = TestData.Logits(21, 2, 3, 7, 1.5, ScalarType.Float64);
        var t = TestData.Logits(22, 2, 3, 7, 2.0, ScalarType.Float64);
        var weights = TestData.Logits(23, 2, 3, 1, 1.0, ScalarType.Float64).squeeze(-1); // a generic linear functional of the per-token values
        // AKL's head/tail weights are detached by design (DSKD), so its finite differences hold them at their value at s.
        var (wHead, wTail) = AdaptiveKl.Weights(s, t, 0.5, 1.7);
        Tensor Value(Tensor x) => name == "akl"
            ? wHead * ForwardKl.PerToken(x, t, 1.7) + wTail * ReverseKl.PerToken(x, t, 1.7)
            : InvariantTests.Divergence(name, x, t, 1.7);
        double F(Tensor x) => (Value(x) * weights).sum().item<double>();
        Assert.True((Value(s) - InvariantTests.Divergence(name, s, t, 1.7)).abs().max().item<double>() < 1e-12);

        var leaf = s.clone().requires_grad_(true);
        (InvariantTests.Divergence(name, leaf, t, 1.7) * weights).sum().backward();
        var analytic = leaf.grad!.reshape(-1);
        var flat = s.reshape(-1);
        const double h = 1e-6;
        var maxErr = 0.0;
        for (long i = 0; i < flat.numel(); i++)
        {
            var plus = flat.clone();
            plus[i] += h;
            var minus = flat.clone();
            minus[i] -= h;
            var numeric = (F(plus.reshape(s.shape)) - F(minus.reshape(s.shape))) / (2 * h);
            maxErr = Math.Max(maxErr, Math.Abs(numeric - analytic[i].item<double>()));
        }

        var scale = Math.Max(analytic.abs().max().item<double>(), 1e-3);
        Assert.True(maxErr / scale < 1e-6, $"{name}: max |autograd − finite difference| / max|grad| = {maxErr / scale:E2}");
    }
}
