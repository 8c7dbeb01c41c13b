using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Distill.Models;
using Distill.Runtime;
using static TorchSharp.torch;

namespace Distill.Benchmarks;

/// <summary>
/// <c>threads</c>: what Distill's CPU threading default buys. Each configuration runs in a fresh child process (libgomp reads
/// its environment once, at load): a quickstart-sized GPT-2 (4 layers, d 128, vocab 257) doing SFT steps on batch 16 × 64,
/// and greedy generation of 32 tokens for 8 prompts, with the machine as it is ("as-is") and with one busy-looping process
/// per logical processor added ("loaded", what a shared box looks like). Configurations: torch's defaults (Distill's off:
/// libgomp's spin-then-sleep policy, one thread per logical processor), Distill's default (passive wait policy, one thread per
/// physical core), an active wait policy, and one thread.
/// </summary>
internal static class ThreadsBench
{
    private static readonly (string Name, Dictionary<string, string?> Environment)[] Configurations =
    [
        ("torch_default", new() { [CpuThreading.DisableVariable] = "1", ["OMP_WAIT_POLICY"] = null, ["OMP_NUM_THREADS"] = null }),
        ("distill_default", new() { [CpuThreading.DisableVariable] = null, ["OMP_WAIT_POLICY"] = null, ["OMP_NUM_THREADS"] = null }),
        ("active_physical", new() { [CpuThreading.DisableVariable] = null, ["OMP_WAIT_POLICY"] = "ACTIVE", ["OMP_NUM_THREADS"] = null }),
        ("one_thread", new() { [CpuThreading.DisableVariable] = null, ["OMP_WAIT_POLICY"] = null, ["OMP_NUM_THREADS"] = "1" }),
    ];

    internal static int Run(string[] args)
    {
        var steps = 8;
        string? output = null;
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--steps": steps = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--out": output = args[++i]; break;
                default: Console.Error.WriteLine($"unknown argument {args[i]}"); return 2;
            }
        }

        var results = new JsonArray();
        foreach (var load in new[] { "as-is", "loaded" })
        {
            var burners = load == "loaded" ? StartBurners(Environment.ProcessorCount) : [];
            try
            {
                foreach (var (name, environment) in Configurations)
                {
                    var result = RunWorker(environment, steps);
                    result["load"] = load;
                    result["config"] = name;
                    result["loadavg_1min"] = LoadAverage();
                    Console.WriteLine(result.ToJsonString());
                    results.Add(result);
                }
            }
            finally
            {
                foreach (var b in burners)
                {
                    b.Kill();
                    b.Dispose();
                }
            }
        }

        var report = new JsonObject
        {
            ["benchmark"] = "threads",
            ["logical_processors"] = Environment.ProcessorCount,
            ["physical_cores"] = CpuThreading.CountPhysicalCores(),
            ["date"] = DateTime.UtcNow.ToString("yyyy-MM-dd HH:mm", CultureInfo.InvariantCulture),
            ["results"] = results,
        };
        var text = report.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
        if (output is not null)
        {
            File.WriteAllText(output, text);
        }

        Console.WriteLine(text);
        return 0;
    }

    /// <summary>The child: reports the threading in effect, then median train-step and generation throughput.</summary>
    internal static int Worker(string[] args)
    {
        var steps = int.Parse(args[0], CultureInfo.InvariantCulture);
        var threading = DistillRuntime.CpuThreading;
        var tokenizerVocab = 257;
        using var model = AutoCausalLM.FromConfig(new Gpt2Config
        {
            ModelType = "gpt2", VocabSize = tokenizerVocab, HiddenSize = 128, NumHiddenLayers = 4, NumAttentionHeads = 4, MaxPositionEmbeddings = 128,
        }, seed: 1);
        using var g = new Generator(0);
        using var ids = randint(0, tokenizerVocab, [16, 64], generator: g, dtype: ScalarType.Int64);
        using var optimizer = optim.AdamW(model.parameters(), lr: 1e-3);
        model.train();
        var stepTimes = new List<double>();
        for (var s = 0; s <= steps; s++)
        {
            var clock = Stopwatch.StartNew();
            using (var scope = NewDisposeScope())
            {
                optimizer.zero_grad();
                var logits = model.Forward(new CausalLMInput { InputIds = ids }).Logits!;
                var loss = nn.functional.cross_entropy(logits[.., ..^1].reshape(-1, tokenizerVocab), ids[.., 1..].reshape(-1));
                loss.backward();
                optimizer.step();
            }

            if (s > 0)
            {
                stepTimes.Add(clock.Elapsed.TotalSeconds); // step 0 is the warm-up
            }
        }

        using var prompts = ids[..8, ..16].clone();
        var genClock = Stopwatch.StartNew();
        using (var result = Generation.TextGenerator.Generate(model, prompts, new Generation.GenerationOptions { MaxNewTokens = 32 }))
        {
            genClock.Stop();
        }

        stepTimes.Sort();
        var median = stepTimes[stepTimes.Count / 2];
        Console.WriteLine(new JsonObject
        {
            ["threads"] = get_num_threads(),
            ["wait_policy"] = threading.WaitPolicy,
            ["reason"] = threading.Reason,
            ["train_step_median_s"] = Math.Round(median, 4),
            ["train_tok_per_s"] = Math.Round(16 * 64 / median, 1),
            ["gen_tok_per_s"] = Math.Round(8 * 32 / genClock.Elapsed.TotalSeconds, 1),
        }.ToJsonString());
        return 0;
    }

    private static JsonObject RunWorker(Dictionary<string, string?> environment, int steps)
    {
        var exe = Environment.ProcessPath!;
        var psi = new ProcessStartInfo(exe) { RedirectStandardOutput = true, UseShellExecute = false };
        if (Path.GetFileNameWithoutExtension(exe) == "dotnet")
        {
            psi.ArgumentList.Add(typeof(ThreadsBench).Assembly.Location);
        }

        psi.ArgumentList.Add("threads-worker");
        psi.ArgumentList.Add(steps.ToString(CultureInfo.InvariantCulture));
        foreach (var (key, value) in environment)
        {
            if (value is null)
            {
                psi.Environment.Remove(key); // this process set Distill's defaults; the child must start clean
            }
            else
            {
                psi.Environment[key] = value;
            }
        }

        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        var line = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).LastOrDefault(l => l.StartsWith('{'));
        return p.ExitCode == 0 && line is not null ? JsonNode.Parse(line)!.AsObject() : new JsonObject { ["error"] = $"worker exit code {p.ExitCode}" };
    }

    /// <summary>Busy-looping child processes (the shell's <c>while :; do :; done</c>), one per logical processor.</summary>
    private static List<Process> StartBurners(int count) =>
    [
        .. Enumerable.Range(0, count).Select(_ => Process.Start(new ProcessStartInfo("/bin/sh", ["-c", "while :; do :; done"]) { UseShellExecute = false })!),
    ];

    private static double? LoadAverage() =>
        File.Exists("/proc/loadavg") && double.TryParse(File.ReadAllText("/proc/loadavg").Split(' ')[0], CultureInfo.InvariantCulture, out var l) ? l : null;
}
