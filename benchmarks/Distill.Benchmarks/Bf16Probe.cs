using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Distill.Benchmarks.Runtime;
using static TorchSharp.torch;

namespace Distill.Benchmarks;

/// <summary>
/// <c>bf16</c>: whether bfloat16 matrix products would speed up the fused kernel's three per-chunk products on this CPU.
/// For each shape (c rows, H, V): the student logits h·Wᵀ [c, V], dL/dh = g·W [c, H] and dL/dW = gᵀ·h [V, H], each in
/// float32 and in bfloat16 (inputs already converted, so the conversion cost is listed separately), min and median of k
/// timed calls after one warm-up, plus the relative error of the bfloat16 logits against float32 (max |Δ| / max |ref|).
/// Prints one JSON object (<c>--out FILE</c> also writes it). Records the CPU's bf16 flags from /proc/cpuinfo.
/// </summary>
internal static class Bf16Probe
{
    internal static int Run(string[] args)
    {
        var threads = 2;
        var repeats = 5;
        string? outPath = null;
        var shapes = new List<(long C, long H, long V)> { (128, 1024, 32000), (1024, 1024, 32000) };
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--threads": threads = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--repeats": repeats = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--out": outPath = args[++i]; break;
                case "--shapes":
                    shapes = [.. args[++i].Split(',').Select(x => x.Split('x').Select(long.Parse).ToArray()).Select(a => (a[0], a[1], a[2]))];
                    break;
                default: throw new ArgumentException($"bf16: unknown argument '{args[i]}'. Flags: --shapes CxHxV,... --repeats 5 --threads 2 --out FILE");
            }
        }

        NativeSetup.Ensure(threads);
        var flags = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("flags", StringComparison.Ordinal)) ?? string.Empty;
        var result = new JsonObject
        {
            ["schema"] = "distill-bf16-probe/1",
            ["date_utc"] = DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture),
            ["cpu"] = ProcStats.CpuModel(),
            ["cpu_bf16_flags"] = new JsonArray(flags.Split(' ').Where(f => f.Contains("bf16", StringComparison.Ordinal) || f.StartsWith("amx", StringComparison.Ordinal)).Select(f => (JsonNode)f).ToArray()),
            ["threads"] = threads,
            ["loadavg_at_start"] = ProcStats.LoadAverage(),
        };
        var rows = new JsonArray();
        foreach (var (c, hd, v) in shapes)
        {
            using var scope = NewDisposeScope();
            var g = new Generator(0);
            var h = randn(c, hd, generator: g);
            var w = randn(v, hd, generator: g).mul_(0.02);
            var grad = randn(c, v, generator: g).mul_(1e-3);
            var hb = h.to(ScalarType.BFloat16);
            var wb = w.to(ScalarType.BFloat16);
            var gb = grad.to(ScalarType.BFloat16);
            var reference = nn.functional.linear(h, w);
            var low = nn.functional.linear(hb, wb).to(ScalarType.Float32);
            var err = ((low - reference).abs().max() / reference.abs().max()).item<float>();
            JsonObject Time(Action fn)
            {
                fn();
                var times = new List<double>();
                for (var i = 0; i < repeats; i++)
                {
                    var sw = Stopwatch.StartNew();
                    fn();
                    times.Add(sw.Elapsed.TotalSeconds);
                }

                var sorted = times.Order().ToList();
                return new JsonObject { ["min_s"] = sorted[0], ["median_s"] = sorted[sorted.Count / 2] };
            }

            var row = new JsonObject
            {
                ["c"] = c, ["H"] = hd, ["V"] = v,
                ["logits_f32"] = Time(() => nn.functional.linear(h, w).Dispose()),
                ["logits_bf16"] = Time(() => nn.functional.linear(hb, wb).Dispose()),
                ["grad_h_f32"] = Time(() => grad.mm(w).Dispose()),
                ["grad_h_bf16"] = Time(() => gb.mm(wb).Dispose()),
                ["grad_w_f32"] = Time(() => grad.t().mm(h).Dispose()),
                ["grad_w_bf16"] = Time(() => gb.t().mm(hb).Dispose()),
                ["convert_w_to_bf16"] = Time(() => w.to(ScalarType.BFloat16).Dispose()),
                ["convert_chunk_grad_to_bf16"] = Time(() => grad.to(ScalarType.BFloat16).Dispose()),
                ["logits_bf16_rel_error"] = err,
            };
            double Sum(string suffix) => new[] { "logits", "grad_h", "grad_w" }.Sum(k => row[$"{k}_{suffix}"]!["min_s"]!.GetValue<double>());
            row["three_products_f32_min_s"] = Sum("f32");
            row["three_products_bf16_min_s"] = Sum("bf16");
            row["bf16_over_f32"] = Sum("bf16") / Sum("f32");
            Console.Error.WriteLine($"[bf16] c={c} H={hd} V={v}: f32 {Sum("f32"):F3}s bf16 {Sum("bf16"):F3}s (×{Sum("bf16") / Sum("f32"):F2}), logits rel. error {err:E2}");
            rows.Add(row);
        }

        result["shapes"] = rows;
        result["loadavg_at_end"] = ProcStats.LoadAverage();
        var text = result.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
        if (outPath is not null)
        {
            File.WriteAllText(outPath + ".tmp", text + "\n");
            File.Move(outPath + ".tmp", outPath, overwrite: true);
        }

        Console.WriteLine(text);
        return 0;
    }
}
