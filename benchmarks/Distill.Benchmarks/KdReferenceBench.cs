using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Distill.Benchmarks.Runtime;
using static TorchSharp.torch;

namespace Distill.Benchmarks;

/// <summary>
/// <c>kd</c> command: the C# side of benchmarks/torch_ref/bench.py (sections <c>calib</c> and <c>kd</c>), same shapes, same
/// protocol (2 threads, 1 warm-up, k = 3 timed calls, median; peak RSS of the cold first call in a fresh child process per
/// variant and shape via /proc/self/clear_refs + VmHWM), same <c>summary</c> keys, so <c>compare.py</c> pairs them.
/// Intermediates are freed deterministically (a DisposeScope around each call).
/// </summary>
internal static class KdReferenceBench
{
    private const string DefaultGrid = "2048x1024x32000,4096x1024x32000,2048x1024x128256";

    internal static int Run(string[] args)
    {
        var opts = Options.Parse(args);
        NativeSetup.Ensure(opts.Threads);
        var total = Stopwatch.StartNew();
        var result = new JsonObject
        {
            ["schema"] = "distill-csharp-bench/1",
            ["date_utc"] = DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture),
            ["host"] = new JsonObject
            {
                ["cpu"] = new JsonObject { ["model"] = ProcStats.CpuModel(), ["logical_cpus"] = Environment.ProcessorCount },
                ["mem_available_mb_at_start"] = ProcStats.MemAvailableMb(),
                ["loadavg_at_start"] = ProcStats.LoadAverage(),
                ["dotnet"] = Environment.Version.ToString(),
            },
            ["config"] = new JsonObject
            {
                ["threads"] = opts.Threads, ["warmup"] = 1, ["repeats_k"] = opts.Repeats,
                ["statistic"] = "median of k timed calls after warm-up", ["quick"] = opts.Quick,
                ["memory_freeing"] = "deterministic: torch.NewDisposeScope() around each call; GC.Collect + WaitForPendingFinalizers before the RSS baseline",
                ["argv"] = new JsonArray(args.Select(a => (JsonNode)a).ToArray()),
            },
            ["torch"] = new JsonObject
            {
                ["torchsharp"] = typeof(TorchSharp.torch).Assembly.GetName().Version?.ToString(),
                ["torch_num_threads"] = get_num_threads(),
                ["blas"] = new JsonObject { ["kind"] = "mkl", ["note"] = "libtorch-cpu NuGet build (MKL linked statically into libtorch_cpu)" },
                ["OMP_NUM_THREADS"] = Environment.GetEnvironmentVariable("OMP_NUM_THREADS"),
            },
        };

        var gemms = opts.Quick
            ? new[] { ("mm_256_cube", 256L, 256L, 256L) }
            : new[] { ("mm_1024_cube", 1024L, 1024L, 1024L), ("gpt2_mlp_fc_512tok", 512L, 768L, 3072L), ("kd_chunk_lm_head_1024x1024x32000", 1024L, 1024L, 32000L), ("gpt2_decode_lm_head_1tok", 1L, 768L, 50257L) };
        Console.Error.WriteLine("[kd] calibration");
        result["calibration"] = opts.NoCalibration ? new JsonObject { ["gemm"] = new JsonArray(), ["skipped"] = "--no-calib" } : Calibration(gemms, extras: true);

        var grid = (opts.Quick ? "512x256x4000" : opts.Grid).Split(',', StringSplitOptions.RemoveEmptyEntries)
            .Select(x => x.Split('x').Select(long.Parse).ToArray()).ToList();
        var results = new JsonArray();
        foreach (var g in grid)
        {
            foreach (var variant in opts.Variants)
            {
                var r = RunWorker(g[0], g[1], g[2], variant, opts);
                Console.Error.WriteLine($"[kd] {variant,-7} N={g[0]} H={g[1]} V={g[2]}: {r?["median_s"]?.GetValue<double>():F3}s peak +{r?["peak_rss_increase_mb"]?.GetValue<double>():F0} MB");
                results.Add(r);
            }
        }

        result["kd_loss"] = new JsonObject
        {
            ["chunk"] = opts.Chunk > 0 ? opts.Chunk : "auto (ChunkSizeRule: H/8 rows, 128..1024)", ["ignore_fraction"] = 0.1, ["temperature"] = 1.0,
            ["loss"] = "sum over non-ignored tokens of KL(p_t || p_s)", ["results"] = results,
            ["sparse_teacher"] = $"variants sparse (SparseTailHandling.Renormalize) and sparse_tail (TailBucket): top-{opts.TopK} of log_softmax(t) + log tail mass, [N, K]; the dense t is freed before the RSS baseline",
            ["all_checks_pass"] = results.All(r => r?["check_vs_naive"] is null || r["check_vs_naive"]!["pass"]!.GetValue<bool>()),
        };
        result["sparse_vs_dense_chunked"] = SparseRatios(results);
        Console.Error.WriteLine("[kd] calibration again at the end (drift check)");
        result["calibration_end"] = opts.NoCalibration ? new JsonObject { ["gemm"] = new JsonArray(), ["skipped"] = "--no-calib" } : Calibration(gemms.Length > 2 ? [gemms[0], gemms[2]] : gemms, extras: false);
        result["host"]!["loadavg_at_end"] = ProcStats.LoadAverage();
        result["summary"] = Summary(result);
        result["total_wall_s"] = total.Elapsed.TotalSeconds;
        var text = result.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
        if (opts.Out is not null)
        {
            var tmp = opts.Out + ".tmp";
            File.WriteAllText(tmp, text + "\n");
            File.Move(tmp, opts.Out, overwrite: true); // atomic replace
        }

        Console.WriteLine(text);
        return 0;
    }

    /// <summary><c>kd-worker N H V variant chunk repeats seed check</c>: one variant and shape in a fresh process; prints one JSON object.</summary>
    internal static int Worker(string[] args)
    {
        long n = long.Parse(args[0], CultureInfo.InvariantCulture), hd = long.Parse(args[1], CultureInfo.InvariantCulture), v = long.Parse(args[2], CultureInfo.InvariantCulture);
        var variant = args[3];
        var chunk = int.Parse(args[4], CultureInfo.InvariantCulture);
        var repeats = int.Parse(args[5], CultureInfo.InvariantCulture);
        var seed = ulong.Parse(args[6], CultureInfo.InvariantCulture);
        var check = args[7] == "1";
        var threads = int.Parse(args[8], CultureInfo.InvariantCulture);
        NativeSetup.Ensure(threads);
        var topK = args.Length > 9 ? long.Parse(args[9], CultureInfo.InvariantCulture) : 64;
        var (h, w, t, labels) = KdLossKernels.Inputs(n, hd, v, seed);
        chunk = Distill.Losses.Kernels.ChunkSizeRule.Resolve(chunk > 0 ? chunk : null, v, hd);
        var sparse = variant.StartsWith("sparse", StringComparison.Ordinal);
        (Tensor, Tensor, Tensor) sparseTeacher = default;
        if (sparse)
        {
            // The sparse variants never see the dense teacher: it is freed before the RSS baseline.
            sparseTeacher = KdLossKernels.TopK(t, topK);
            t.Dispose();
        }

        float Call(string which) => which switch
        {
            "naive" => KdLossKernels.Naive(h, w, t, labels),
            "chunked" => KdLossKernels.Chunked(h, w, t, labels, chunk),
            "chunked_bf16" => KdLossKernels.Chunked(h, w, t, labels, chunk, bfloat16: true),
            "sparse" => KdLossKernels.SparseChunked(h, w, sparseTeacher, labels, chunk, Distill.Losses.SparseTailHandling.Renormalize),
            "sparse_tail" => KdLossKernels.SparseChunked(h, w, sparseTeacher, labels, chunk, Distill.Losses.SparseTailHandling.TailBucket),
            _ => throw new ArgumentException($"kd-worker: unknown variant '{which}' (naive, chunked, chunked_bf16, sparse, sparse_tail)."),
        };

        var outp = new JsonObject
        {
            ["N"] = n, ["H"] = hd, ["V"] = v, ["variant"] = variant, ["chunk"] = variant != "naive" ? chunk : null, ["top_k"] = sparse ? topK : null,
            ["n_valid_tokens"] = labels.ne(DistillationBatch.IgnoreIndex).sum().item<long>(),
            ["torch_num_threads"] = get_num_threads(),
        };
        // 1) Peak RSS of the first (cold) call; this call is warm-up #1.
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        ProcStats.ResetPeak();
        var baseKb = ProcStats.StatusKb("VmRSS");
        var coldAcct = new ProcStats.CpuAccount();
        var sw = Stopwatch.StartNew();
        var loss = Call(variant);
        var first = sw.Elapsed.TotalSeconds;
        var hwmKb = ProcStats.StatusKb("VmHWM");
        outp["rss_baseline_mb"] = baseKb / 1024.0;
        outp["peak_rss_increase_mb"] = (hwmKb - baseKb) / 1024.0;
        outp["first_call_s"] = first;
        outp["loss"] = loss;
        // 2) k timed calls. --repeats 0 (memory first, for a busy host): the cold call is the only timing, reported as such.
        var acct = repeats > 0 ? new ProcStats.CpuAccount() : coldAcct;
        var times = new List<double>();
        for (var i = 0; i < repeats; i++)
        {
            sw.Restart();
            Call(variant);
            times.Add(sw.Elapsed.TotalSeconds);
        }

        if (times.Count == 0)
        {
            times.Add(first);
            outp["timing"] = "cold first call only (--repeats 0)";
        }

        outp["cpu_during_timed_calls"] = JsonSerializer.SerializeToNode(acct.Result());
        var sorted = times.Order().ToList();
        outp["median_s"] = sorted[sorted.Count / 2];
        outp["min_s"] = sorted[0];
        outp["max_s"] = sorted[^1];
        outp["runs_s"] = new JsonArray(times.Select(x => (JsonNode)Math.Round(x, 6)).ToArray());
        outp["k"] = times.Count;
        outp["tokens_per_s"] = n / sorted[sorted.Count / 2];
        // 3) Chunked vs naive on the same inputs, after all measurements (chunked_bf16: against the float32 chunked kernel,
        //    with a tolerance of 3e-2, about 8 bfloat16 ulps; the unit tests derive the exact bound).
        if ((variant == "chunked" || variant == "chunked_bf16") && check)
        {
            var reference = variant == "chunked" ? "naive" : "chunked";
            var tol = variant == "chunked" ? 1e-4 : 3e-2;
            double lc = Call(variant);
            var ghC = h.grad!.clone();
            var gwC = w.grad!.clone();
            double ln = Call(reference);
            JsonObject Rel(Tensor a, Tensor b) => new()
            {
                ["max_abs_over_max_abs"] = ((a - b).abs().max() / b.abs().max()).item<float>(),
                ["l2_rel"] = ((a - b).norm() / b.norm()).item<float>(),
            };
            var chk = new JsonObject
            {
                ["reference"] = reference, ["loss_chunked"] = lc, ["loss_naive"] = ln, ["loss_rel"] = Math.Abs(lc - ln) / Math.Abs(ln),
                ["grad_h"] = Rel(ghC, h.grad!), ["grad_W"] = Rel(gwC, w.grad!), ["tol"] = tol,
            };
            chk["pass"] = chk["loss_rel"]!.GetValue<double>() <= tol && new[] { "grad_h", "grad_W" }.All(k =>
                chk[k]!["max_abs_over_max_abs"]!.GetValue<float>() <= tol && chk[k]!["l2_rel"]!.GetValue<float>() <= tol);
            outp["check_vs_naive"] = chk;
        }

        Console.WriteLine(outp.ToJsonString());
        return 0;
    }

    private static JsonObject? RunWorker(long n, long h, long v, string variant, Options opts)
    {
        var exe = Environment.ProcessPath!;
        var psi = new ProcessStartInfo(exe)
        {
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        var self = typeof(KdReferenceBench).Assembly.Location;
        if (Path.GetFileNameWithoutExtension(exe) == "dotnet")
        {
            psi.ArgumentList.Add(self);
        }

        foreach (var a in new[] { "kd-worker", $"{n}", $"{h}", $"{v}", variant, $"{opts.Chunk}", $"{opts.Repeats}", $"{opts.Seed}", opts.Check ? "1" : "0", $"{opts.Threads}", $"{opts.TopK}" })
        {
            psi.ArgumentList.Add(a);
        }

        psi.Environment["OMP_NUM_THREADS"] = opts.Threads.ToString(CultureInfo.InvariantCulture);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        var line = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).LastOrDefault(l => l.StartsWith('{'));
        if (p.ExitCode != 0 || line is null)
        {
            return new JsonObject { ["N"] = n, ["H"] = h, ["V"] = v, ["variant"] = variant, ["error"] = $"worker exit code {p.ExitCode}" };
        }

        return JsonNode.Parse(line)!.AsObject();
    }

    /// <summary>Per shape: each sparse variant's time and peak RSS increase over the dense chunked kernel's, same run (&lt; 1 = better).</summary>
    private static JsonArray SparseRatios(JsonArray results)
    {
        var ratios = new JsonArray();
        foreach (var dense in results.Where(r => r?["variant"]?.GetValue<string>() == "chunked" && r["median_s"] is not null))
        {
            foreach (var sparse in results.Where(r => r?["variant"]?.GetValue<string>().StartsWith("sparse", StringComparison.Ordinal) == true && r["median_s"] is not null
                && r["N"]!.GetValue<long>() == dense!["N"]!.GetValue<long>() && r["H"]!.GetValue<long>() == dense["H"]!.GetValue<long>() && r["V"]!.GetValue<long>() == dense["V"]!.GetValue<long>()))
            {
                ratios.Add(new JsonObject
                {
                    ["N"] = dense!["N"]!.GetValue<long>(), ["H"] = dense["H"]!.GetValue<long>(), ["V"] = dense["V"]!.GetValue<long>(), ["variant"] = sparse!["variant"]!.GetValue<string>(),
                    ["time_ratio"] = sparse["median_s"]!.GetValue<double>() / dense["median_s"]!.GetValue<double>(),
                    ["peak_rss_increase_ratio"] = sparse["peak_rss_increase_mb"]!.GetValue<double>() / dense["peak_rss_increase_mb"]!.GetValue<double>(),
                });
            }
        }

        return ratios;
    }

    private static JsonObject Calibration((string Name, long M, long K, long N)[] gemms, bool extras)
    {
        using var scope = NewDisposeScope();
        var g = new Generator(0);
        var list = new JsonArray();
        foreach (var (name, m, k, n) in gemms)
        {
            using var inner = NewDisposeScope();
            var x = randn(m, k, generator: g);
            var w = randn(n, k, generator: g);
            var times = TimeMinTotal(() => nn.functional.linear(x, w).Dispose(), 1, 5);
            var med = Median(times);
            list.Add(new JsonObject
            {
                ["name"] = name, ["op"] = "nn.functional.linear(x[M,K], w[N,K]) = x @ w^T", ["M"] = m, ["K"] = k, ["N"] = n,
                ["median_s"] = med, ["k"] = times.Count, ["min_s"] = times.Min(), ["gflops"] = 2.0 * m * k * n / med / 1e9,
                ["weight_read_gb_s"] = n * k * 4 / med / 1e9,
            });
        }

        var result = new JsonObject { ["gemm"] = list };
        if (extras)
        {
            var x = randn(1024, 32000, generator: g);
            var times = TimeMinTotal(() => x.log_softmax(-1).Dispose(), 1, 5);
            result["log_softmax_1024x32000"] = new JsonObject { ["median_s"] = Median(times), ["k"] = times.Count, ["min_s"] = times.Min() };
            var a = ones(16);
            var b = ones(16);
            for (var i = 0; i < 1000; i++)
            {
                a.add_(b);
            }

            var per = new List<double>();
            for (var r = 0; r < 5; r++)
            {
                var sw = Stopwatch.StartNew();
                for (var i = 0; i < 20000; i++)
                {
                    a.add_(b);
                }

                per.Add(sw.Elapsed.TotalSeconds / 20000 * 1e6);
            }

            result["dispatch_add_16_elems_us"] = Median(per);
        }

        return result;
    }

    private static List<double> TimeMinTotal(Action fn, int warmup, int minRepeats, double minTotal = 0.5, int maxRepeats = 50)
    {
        for (var i = 0; i < warmup; i++)
        {
            fn();
        }

        var times = new List<double>();
        while (times.Count < maxRepeats && (times.Count < minRepeats || times.Sum() < minTotal))
        {
            var sw = Stopwatch.StartNew();
            fn();
            times.Add(sw.Elapsed.TotalSeconds);
        }

        return times;
    }

    private static double Median(List<double> xs)
    {
        var s = xs.Order().ToList();
        return s.Count % 2 == 1 ? s[s.Count / 2] : (s[(s.Count / 2) - 1] + s[s.Count / 2]) / 2;
    }

    /// <summary>The flat key → number map with bench.py's <c>build_summary</c> keys.</summary>
    private static JsonObject Summary(JsonObject result)
    {
        var s = new JsonObject();
        foreach (var gm in result["calibration"]!["gemm"]!.AsArray())
        {
            s[$"calib/gemm/{gm!["name"]}/gflops"] = gm["gflops"]!.GetValue<double>();
        }

        if (result["calibration"]!["log_softmax_1024x32000"] is JsonNode ls)
        {
            s["calib/log_softmax_1024x32000/time_s"] = ls["median_s"]!.GetValue<double>();
        }

        if (result["calibration"]!["dispatch_add_16_elems_us"] is JsonNode d)
        {
            s["calib/dispatch_add_16_elems/time_us"] = d.GetValue<double>();
        }

        foreach (var gm in result["calibration_end"]!["gemm"]!.AsArray())
        {
            s[$"calib_end/gemm/{gm!["name"]}/gflops"] = gm["gflops"]!.GetValue<double>();
        }

        foreach (var r in result["kd_loss"]!["results"]!.AsArray())
        {
            if (r?["median_s"] is null)
            {
                continue;
            }

            var key = $"kd/{r["variant"]}/N{r["N"]}_H{r["H"]}_V{r["V"]}";
            s[key + "/time_s"] = r["median_s"]!.GetValue<double>();
            s[key + "/peak_rss_increase_mb"] = r["peak_rss_increase_mb"]!.GetValue<double>();
            if (r["cpu_during_timed_calls"] is JsonNode cpu)
            {
                // CPU seconds per call: less sensitive to other load on the host than wall time.
                s[key + "/cpu_s"] = (cpu["cpu_user_s"]!.GetValue<double>() + cpu["cpu_sys_s"]!.GetValue<double>()) / r["k"]!.GetValue<int>();
            }
        }

        return s;
    }

    private sealed record Options(string Grid, string[] Variants, int Chunk, int Repeats, int Threads, ulong Seed, bool Check, bool Quick, string? Out, bool NoCalibration = false, long TopK = 64)
    {
        internal static Options Parse(string[] args)
        {
            var o = new Options(DefaultGrid, ["naive", "chunked"], 0, 3, 2, 0, true, false, null);
            for (var i = 0; i < args.Length; i++)
            {
                o = args[i] switch
                {
                    "--kd-grid" => o with { Grid = args[++i] },
                    "--kd-variants" => o with { Variants = args[++i].Split(',') },
                    "--kd-topk" => o with { TopK = long.Parse(args[++i], CultureInfo.InvariantCulture) },
                    "--kd-chunk" => o with { Chunk = int.Parse(args[++i], CultureInfo.InvariantCulture) },
                    "--repeats" or "-k" => o with { Repeats = int.Parse(args[++i], CultureInfo.InvariantCulture) },
                    "--threads" => o with { Threads = int.Parse(args[++i], CultureInfo.InvariantCulture) },
                    "--seed" => o with { Seed = ulong.Parse(args[++i], CultureInfo.InvariantCulture) },
                    "--kd-no-check" => o with { Check = false },
                    "--no-calib" => o with { NoCalibration = true },
                    "--quick" => o with { Quick = true, Repeats = 1 },
                    "--out" => o with { Out = args[++i] },
                    _ => throw new ArgumentException($"kd: unknown argument '{args[i]}'. Flags: --kd-grid NxHxV,... --kd-variants naive,chunked[,chunked_bf16,sparse,sparse_tail] --kd-topk 64 --kd-chunk ROWS (0 = automatic rule) --repeats 3 --threads 2 --seed 0 --kd-no-check --no-calib --quick --out FILE (--repeats 0: cold call only)"),
                };
            }

            return o;
        }
    }
}
