using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Distill.Models;
using TorchSharp;

namespace Distill.Benchmarks;

/// <summary>Options shared by the model benchmarks (names as in bench.py).</summary>
internal sealed record ModelBenchOptions(int Threads, int Warmup, int Repeats, int Layers, int Prompt, int NewTokens, int Batch, int Seq, long Seed, string? Out);

/// <summary>
/// Timing protocol of benchmarks/torch_ref/bench.py: fixed thread count, 1 warm-up, k timed calls, median; JSON with
/// "summary" keys, "config.threads", "host.cpu.model" and "torch.blas.kind".
/// </summary>
internal static class ForwardBenchmarkHarness
{
    internal static ModelBenchOptions ParseOptions(string[] args)
    {
        var map = new Dictionary<string, string>(StringComparer.Ordinal);
        for (var i = 0; i + 1 < args.Length; i += 2)
        {
            map[args[i].TrimStart('-')] = args[i + 1];
        }

        int Int(string key, int fallback) => map.TryGetValue(key, out var v) ? int.Parse(v, CultureInfo.InvariantCulture) : fallback;
        return new ModelBenchOptions(Int("threads", 2), Int("warmup", 1), Int("repeats", 3), Int("layers", 12), Int("prompt", 32), Int("new", 64), Int("batch", 4), Int("seq", 128), Int("seed", 0), map.GetValueOrDefault("out"));
    }

    internal static void Emit(ModelBenchOptions options, params Func<ModelBenchOptions, JsonObject, JsonObject>[] sections)
    {
        Environment.SetEnvironmentVariable("OMP_NUM_THREADS", options.Threads.ToString(CultureInfo.InvariantCulture));
        torch.set_num_threads(options.Threads);
        var summary = new JsonObject();
        var details = new JsonObject();
        var wall = Stopwatch.StartNew();
        foreach (var section in sections)
        {
            var (name, detail) = (section.Method.DeclaringType!.Name + (section.Method.Name == "Run" ? string.Empty : "." + section.Method.Name), section(options, summary));
            details[name] = detail;
        }

        var result = new JsonObject
        {
            ["schema"] = "distill-csharp-bench/1",
            ["date_utc"] = DateTime.UtcNow.ToString("o", CultureInfo.InvariantCulture),
            ["host"] = new JsonObject { ["cpu"] = new JsonObject { ["model"] = CpuModel(), ["logical_cpus"] = Environment.ProcessorCount } },
            ["config"] = new JsonObject { ["threads"] = options.Threads, ["warmup"] = options.Warmup, ["repeats"] = options.Repeats, ["seed"] = options.Seed },
            ["torch"] = new JsonObject
            {
                ["torchsharp"] = typeof(torch).Assembly.GetName().Version?.ToString(),
                ["torch_num_threads"] = torch.get_num_threads(),
                ["blas"] = new JsonObject { ["kind"] = "mkl (libtorch-cpu, statically linked)" },
            },
            ["details"] = details,
            ["summary"] = summary,
            ["total_wall_s"] = wall.Elapsed.TotalSeconds,
        };
        var json = result.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
        Console.WriteLine(json);
        if (options.Out is not null)
        {
            Distill.IO.AtomicFile.WriteAllText(options.Out, json + "\n");
        }
    }

    /// <summary>1 warm-up (more with --warmup), then k timed calls; returns the times in seconds.</summary>
    internal static List<double> Time(ModelBenchOptions options, Action call)
    {
        for (var i = 0; i < options.Warmup; i++)
        {
            call();
        }

        var times = new List<double>();
        for (var i = 0; i < options.Repeats; i++)
        {
            var sw = Stopwatch.StartNew();
            call();
            times.Add(sw.Elapsed.TotalSeconds);
        }

        return times;
    }

    internal static double Median(IReadOnlyList<double> xs)
    {
        var s = xs.Order().ToArray();
        return s.Length % 2 == 1 ? s[s.Length / 2] : (s[(s.Length / 2) - 1] + s[s.Length / 2]) / 2;
    }

    internal static JsonObject Stats(IReadOnlyList<double> times) => new()
    {
        ["median_s"] = Median(times),
        ["min_s"] = times.Min(),
        ["max_s"] = times.Max(),
        ["runs_s"] = new JsonArray([.. times.Select(t => (JsonNode)Math.Round(t, 6))]),
        ["k"] = times.Count,
    };

    /// <summary>bench.py's GPT-2-small-shaped model: 768 wide, 12 heads, vocab 50257, 1024 positions, no dropout, tied lm_head.</summary>
    internal static CausalLM Gpt2Small(int layers, long seed) => AutoCausalLM.FromConfig(
        new Gpt2Config
        {
            ModelType = "gpt2",
            VocabSize = 50257,
            HiddenSize = 768,
            NumHiddenLayers = layers,
            NumAttentionHeads = 12,
            MaxPositionEmbeddings = 1024,
            ActivationFunction = "gelu_new",
            ResidualDropout = 0,
            EmbeddingDropout = 0,
            AttentionDropout = 0,
        },
        seed);

    /// <summary>Peak RSS bookkeeping as bench.py: reset VmHWM via /proc/self/clear_refs, then read it after the call.</summary>
    internal static double? PeakRssIncreaseMb(Action call)
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        try
        {
            File.WriteAllText("/proc/self/clear_refs", "5");
        }
        catch (IOException)
        {
            call();
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            call();
            return null;
        }

        var baseline = StatusKb("VmRSS");
        call();
        var peak = StatusKb("VmHWM");
        return baseline is { } b && peak is { } p ? (p - b) / 1024.0 : null;
    }

    private static long? StatusKb(string field)
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
        {
            if (line.StartsWith(field + ":", StringComparison.Ordinal))
            {
                return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);
            }
        }

        return null;
    }

    private static string? CpuModel()
    {
        try
        {
            return File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim();
        }
        catch (IOException)
        {
            return null;
        }
    }
}
