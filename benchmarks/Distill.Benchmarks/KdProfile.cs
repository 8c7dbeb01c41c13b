using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Distill.Benchmarks.Runtime;
using Distill.Losses.Kernels;
using static TorchSharp.torch;

namespace Distill.Benchmarks;

/// <summary>
/// <c>kd-profile</c>: where the fused forward-KL kernel's time goes, per chunk size. The kernel's chunk loop written out with
/// the same operations as <see cref="FusedLinearDivergence"/> (student logits h·Wᵀ, the closed-form chunk loss and gradient
/// of <see cref="ForwardKlChunkDivergence"/>, dL/dh += g·W, dL/dW += gᵀ·h), each phase timed in wall and process CPU
/// seconds (all threads), summed over the chunks of one forward + backward, median of k passes after a warm-up. The matrix
/// products are the same for every chunk size; what changes is their shape (the rows c are the GEMMs' M or K dimension) and
/// how often W [V, H] and the gradient buffer are streamed (N / c times each).
/// </summary>
internal static class KdProfile
{
    private static readonly string[] Phases = ["logits", "loss_and_grad", "grad_h", "grad_w"];

    internal static int Run(string[] args)
    {
        long n = 2048, hd = 1024, v = 32000;
        var chunks = new[] { 128, 256, 1024 };
        var repeats = 1;
        var threads = 2;
        string? outPath = null;
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--shape":
                    var p = args[++i].Split('x').Select(long.Parse).ToArray();
                    (n, hd, v) = (p[0], p[1], p[2]);
                    break;
                case "--chunks": chunks = [.. args[++i].Split(',').Select(int.Parse)]; break;
                case "--repeats": repeats = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--threads": threads = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--out": outPath = args[++i]; break;
                default: throw new ArgumentException($"kd-profile: unknown argument '{args[i]}'. Flags: --shape NxHxV --chunks 128,256,1024 --repeats 1 --threads 2 --out FILE");
            }
        }

        NativeSetup.Ensure(threads);
        var (h, w, t, labels) = KdLossKernels.Inputs(n, hd, v, 0);
        var result = new JsonObject
        {
            ["schema"] = "distill-kd-profile/1", ["N"] = n, ["H"] = hd, ["V"] = v, ["threads"] = threads, ["repeats_k"] = repeats,
            ["cpu"] = ProcStats.CpuModel(), ["loadavg_at_start"] = ProcStats.LoadAverage(),
        };
        var rows = new JsonArray();
        foreach (var c in chunks)
        {
            Pass(h, w, t, labels, c);                                                      // warm-up
            var passes = Enumerable.Range(0, repeats).Select(_ => Pass(h, w, t, labels, c)).ToList();
            var row = new JsonObject { ["chunk"] = c };
            foreach (var phase in Phases.Append("total"))
            {
                var wall = passes.Select(x => x[phase].Wall).Order().ToList();
                var cpu = passes.Select(x => x[phase].Cpu).Order().ToList();
                row[phase] = new JsonObject { ["wall_s"] = wall[wall.Count / 2], ["cpu_s"] = cpu[cpu.Count / 2] };
            }

            Console.Error.WriteLine($"[kd-profile] chunk {c}: " + string.Join(", ", Phases.Append("total").Select(ph => $"{ph} {row[ph]!["cpu_s"]!.GetValue<double>():F2} cpu-s")));
            rows.Add(row);
        }

        result["chunks"] = rows;
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

    private static Dictionary<string, (double Wall, double Cpu)> Pass(Tensor hidden, Tensor weight, Tensor teacher, Tensor labels, int chunk)
    {
        var acc = Phases.Append("total").ToDictionary(p => p, _ => (Wall: 0.0, Cpu: 0.0));
        var proc = Process.GetCurrentProcess();
        void Timed(string phase, Action fn)
        {
            proc.Refresh();
            var cpu0 = proc.TotalProcessorTime;
            var sw = Stopwatch.StartNew();
            fn();
            var wall = sw.Elapsed.TotalSeconds;
            proc.Refresh();
            var cpu = (proc.TotalProcessorTime - cpu0).TotalSeconds;
            acc[phase] = (acc[phase].Wall + wall, acc[phase].Cpu + cpu);
            acc["total"] = (acc["total"].Wall + wall, acc["total"].Cpu + cpu);
        }

        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var divergence = new ForwardKlChunkDivergence(kdRate: 1.0, temperature: 1.0);
        long n = hidden.shape[0];
        var gradH = zeros_like(hidden);
        var gradW = zeros(weight.shape, dtype: ScalarType.Float32);
        for (long start = 0; start < n; start += chunk)
        {
            using var chunkScope = NewDisposeScope();
            var length = Math.Min(chunk, n - start);
            var h = hidden.narrow(0, start, length);
            Tensor s = null!, g = null!;
            Timed("logits", () => s = nn.functional.linear(h, weight));
            Timed("loss_and_grad", () =>
            {
                if (!divergence.TrySumAndGradient(s, teacher.narrow(0, start, length), labels.narrow(0, start, length), start, false, out var sum, out g))
                {
                    throw new InvalidOperationException("kd-profile: the closed form did not apply");
                }

                sum.item<float>();
            });
            Timed("grad_h", () => gradH.narrow(0, start, length).addmm_(g, weight));
            Timed("grad_w", () => gradW.addmm_(g.t(), h));
        }

        return acc;
    }
}
