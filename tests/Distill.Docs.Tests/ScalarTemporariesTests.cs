namespace Distill.Docs.Tests;

/// <summary>
/// Guard for the TorchSharp temporary-Scalar hazard (docs/guarantees.md, "Native scalars"): no file under <c>src/</c> may hand
/// libtorch a Scalar that nothing keeps alive. Use the helpers of <c>Distill.TorchScalars</c> (Distill.Core) instead.
/// </summary>
public sealed class ScalarTemporariesTests
{
    [Fact]
    public void Src_HasNoTemporaryScalarArguments()
    {
        var compilation = ScalarTemporaries.Compile(ScalarTemporaries.SourceFiles());
        var blind = ScalarTemporaries.BindingErrors(compilation);
        Assert.True(blind.Count == 0, "The scan cannot bind these (a missing reference would hide sites):\n" + string.Join("\n", blind));
        var sites = ScalarTemporaries.Find(compilation);
        Assert.True(sites.Count == 0, $"{sites.Count} call(s) hand libtorch a temporary Scalar; use TorchScalars:\n" + string.Join("\n", sites));
    }

    [Fact]
    public void Scan_ReportsEachHazardousShape_AndNotTheSafeOnes()
    {
        const string source = """
            using TorchSharp;
            using static TorchSharp.torch;

            static class TorchScalars { public static Scalar Constant(double value) => value.ToScalar(); }
            static class Ids { public const long Pad = -100; }

            static class Sample
            {
                static Tensor H1(Tensor x, Tensor m, double v) => x.masked_fill(m, v);
                static Tensor H2(Tensor x, Tensor m) => x.masked_fill(m, Ids.Pad);
                static Tensor H3(Tensor x) => x * 0.5;
                static Tensor H4(Tensor x) => 1 - x;
                static Tensor H5(Tensor x, Tensor y) => x + y;
                static Tensor H6(Tensor x, Tensor y) => x.add(y);
                static Tensor H7(long n) => arange(n);
                static double H8(Tensor x) => x.ToDouble();
                static Tensor H9(Tensor x, double v) => x.mul(TorchScalars.Constant(v));
                static Tensor H10(Tensor x) => x.clamp_min(1e-6);

                static Tensor Safe1(Tensor x, Tensor m, double v) { using var s = v.ToScalar(); return x.masked_fill(m, s); }
                static Tensor Safe2(Tensor x, Tensor y) => x - y * y;
                static Tensor Safe3(Tensor x) => x.mul(TorchScalars.Constant(0.5));
                static Tensor Safe4(Tensor x, Tensor y) => x.add(y, TorchScalars.Constant(1));
            }
            """;
        var compilation = ScalarTemporaries.Compile([("Sample.cs", source)]);
        var sites = ScalarTemporaries.Find(compilation);
        var lines = sites.Select(s => int.Parse(s.Split(':')[1], System.Globalization.CultureInfo.InvariantCulture)).Distinct().ToList();
        // H1..H10 are lines 9..18 (H7 twice: the overload and its argument), nothing on the Safe lines (20..23).
        Assert.True(lines.Order().SequenceEqual(Enumerable.Range(9, 10)), "Reported:\n" + string.Join("\n", sites));
    }
}
