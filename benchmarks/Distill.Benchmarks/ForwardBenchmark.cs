using System.Text.Json.Nodes;
using TorchSharp;
using static TorchSharp.torch;

namespace Distill.Benchmarks;

/// <summary>
/// Forward throughput of the GPT-2-small-shaped model (eval, no_grad, fp32) on bench.py's training batch (4 × 128 random ids,
/// logits for all positions), plus the sgemm calibration keys bench.py uses to tell a BLAS difference from a framework one.
/// </summary>
internal static class ForwardBenchmark
{
    internal static JsonObject Run(ModelBenchOptions o, JsonObject summary)
    {
        var detail = new JsonObject();
        Calibrate(o, summary, detail);
        using var model = ForwardBenchmarkHarness.Gpt2Small(o.Layers, o.Seed + 1);
        using var g = new Generator((ulong)o.Seed);
        using var ids = torch.randint(0, 50257, [o.Batch, o.Seq], generator: g, dtype: ScalarType.Int64);
        var key = $"forward/gpt2_L{o.Layers}_b{o.Batch}x{o.Seq}";
        Console.Error.WriteLine($"[bench] {key}");
        var times = ForwardBenchmarkHarness.Time(o, () =>
        {
            using var scope = torch.NewDisposeScope();
            using var noGrad = torch.no_grad();
            model.Forward(new CausalLMInput { InputIds = ids });
        });
        var median = ForwardBenchmarkHarness.Median(times);
        summary[$"{key}/time_s"] = median;
        summary[$"{key}/tokens_per_s"] = o.Batch * o.Seq / median;
        detail["forward"] = ForwardBenchmarkHarness.Stats(times);
        return detail;
    }

    // sgemm via linear(x[M,K], w[N,K]), GFLOP/s = 2MKN / t (bench.py calib/gemm/*).
    private static void Calibrate(ModelBenchOptions o, JsonObject summary, JsonObject detail)
    {
        foreach (var (name, m, k, n) in new[] { ("mm_1024_cube", 1024, 1024, 1024), ("gpt2_mlp_fc_512tok", 512, 768, 3072), ("gpt2_decode_lm_head_1tok", 1, 768, 50257) })
        {
            using var x = torch.randn(m, k);
            using var w = torch.randn(n, k);
            var times = ForwardBenchmarkHarness.Time(o with { Repeats = Math.Max(o.Repeats, 10) }, () =>
            {
                using var y = nn.functional.linear(x, w);
            });
            var gflops = 2.0 * m * k * n / ForwardBenchmarkHarness.Median(times) / 1e9;
            summary[$"calib/gemm/{name}/gflops"] = gflops;
            detail[$"gemm_{name}"] = ForwardBenchmarkHarness.Stats(times);
        }
    }
}
