using BenchmarkDotNet.Attributes;
using static TorchSharp.torch;

namespace Distill.Benchmarks;

/// <summary>
/// BenchmarkDotNet view of the KD loss kernels (time only: libtorch memory is invisible to MemoryDiagnoser; the
/// <c>kd</c> command measures peak RSS per variant in fresh processes). Run: <c>dotnet run -c Release -- bdn --filter *KdLoss*</c>.
/// </summary>
[MemoryDiagnoser]
public class KdLossBenchmark
{
    private Tensor h = null!;
    private Tensor w = null!;
    private Tensor t = null!;
    private Tensor labels = null!;

    /// <summary>Gets or sets the shape NxHxV.</summary>
    [Params("2048x1024x32000", "512x256x32000")]
    public string Shape { get; set; } = "512x256x32000";

    /// <summary>Rows per chunk of the fused kernel.</summary>
    [Params(1024)]
    public int Chunk { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        Runtime.NativeSetup.Ensure();
        var p = Shape.Split('x').Select(long.Parse).ToArray();
        (h, w, t, labels) = KdLossKernels.Inputs(p[0], p[1], p[2], 0);
    }

    [Benchmark(Baseline = true)]
    public float Naive() => KdLossKernels.Naive(h, w, t, labels);

    [Benchmark]
    public float Chunked() => KdLossKernels.Chunked(h, w, t, labels, Chunk);

    [GlobalCleanup]
    public void Cleanup()
    {
        h.Dispose();
        w.Dispose();
        t.Dispose();
        labels.Dispose();
    }
}
