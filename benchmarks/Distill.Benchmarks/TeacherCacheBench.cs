using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Distill.Benchmarks.Runtime;
using Distill.Data;
using Distill.Losses;
using Distill.Models;
using Distill.Training;
using static TorchSharp.torch;

namespace Distill.Benchmarks;

/// <summary>
/// <c>teacher-cache</c>: a training step with a cached top-k teacher vs the same step with the teacher in the process, and
/// cache-write throughput vs the teacher's bare forward throughput. Each measurement runs in a fresh child process, so its
/// peak RSS (VmHWM) is its own. Student: GPT-2 2 layers × 128; teacher: 6 layers × 384 (3× the layers and the width, so its
/// forward costs far more than 3× the student's); vocabulary 4096; batch 8 × 128 random ids (127 scored positions per row);
/// k = 64. Online: <c>forward_kl</c> (α = 0.5, T = 1) against <see cref="LocalModelTeacher"/>; cached: <c>sparse_forward_kl</c>
/// (α = 0.5, T = 1) against <see cref="CachedTopKTeacher"/> over a cache the <c>write</c> worker filled. Both through
/// <see cref="DistillationTrainer"/> with prefetch off (the step's own cost; prefetch would overlap the teacher with training).
/// Throughput: the <c>write</c> and <c>forward</c> workers each do one untimed warm-up batch first (the writer into a throwaway
/// one-batch cache), so one-time costs (first-call JIT of the writer, Arrow and JSON code, libtorch's first forward) are outside
/// both timed regions, as the step workers' warm-up steps are; fsync, hashing and the merge stay inside the writer's.
/// Targets (issue 15): cached step ≤ 0.6 × online step; cache write throughput within 10 % of bare forward throughput.
/// </summary>
internal static class TeacherCacheBench
{
    private const int Vocab = 4096, Batch = 8, Seq = 128, K = 64;

    internal static int Run(string[] args)
    {
        int steps = 6, warmup = 2, rowsPerChunk = 0, repeats = 1;
        var writeOnly = false;
        string? output = null;
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--steps": steps = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--warmup": warmup = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--out": output = args[++i]; break;
                case "--rows-per-chunk": rowsPerChunk = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--repeats": repeats = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--write-only": writeOnly = true; break;
                default: Console.Error.WriteLine($"unknown argument {args[i]}"); return 2;
            }
        }

        var dir = Path.Combine(Path.GetTempPath(), "distill-teacher-cache-bench-" + Guid.NewGuid().ToString("N"));
        try
        {
            var results = new JsonObject();
            var writeRuns = new JsonArray();
            var forwardRuns = new JsonArray();
            var ratios = new List<double>();
            var cpuRatios = new List<double>();
            for (var rep = 0; rep < repeats; rep++)
            {
                // write, then forward, back to back: each pair ran at about the same load.
                var w = RunWorker("write", dir, steps, warmup, rowsPerChunk);
                w["loadavg"] = ProcStats.LoadAverage();
                Console.WriteLine($"write: {w.ToJsonString()}");
                if (Directory.Exists(dir))
                {
                    Directory.Delete(dir, recursive: true);
                }

                var f = RunWorker("forward", dir, steps, warmup, rowsPerChunk);
                f["loadavg"] = ProcStats.LoadAverage();
                Console.WriteLine($"forward: {f.ToJsonString()}");
                double W(JsonObject o, string key) => o[key]?.GetValue<double>() ?? double.NaN;
                ratios.Add(W(w, "positions_per_s") / W(f, "positions_per_s"));
                cpuRatios.Add(W(f, "cpu_s") / W(w, "cpu_s"));
                writeRuns.Add(w);
                forwardRuns.Add(f);
            }

            results["write"] = writeRuns;
            results["forward"] = forwardRuns;
            if (!writeOnly)
            {
                // The cached step reads the cache the last write worker filled: write it again.
                if (Directory.Exists(dir))
                {
                    Directory.Delete(dir, recursive: true);
                }

                _ = RunWorker("write", dir, steps, warmup, rowsPerChunk);
                foreach (var mode in new[] { "online", "cached" })
                {
                    var r = RunWorker(mode, dir, steps, warmup, rowsPerChunk);
                    r["loadavg"] = ProcStats.LoadAverage();
                    Console.WriteLine($"{mode}: {r.ToJsonString()}");
                    results[mode] = r;
                }
            }

            double Get(string mode, string key) => results[mode]?[key]?.GetValue<double>() ?? double.NaN;
            static double Median(List<double> x)
            {
                var o = x.Order().ToList();
                return o.Count % 2 == 1 ? o[o.Count / 2] : (o[(o.Count / 2) - 1] + o[o.Count / 2]) / 2;
            }

            var stepRatio = Get("cached", "step_median_s") / Get("online", "step_median_s");
            var writeRatio = Median(ratios);
            var cpuRatio = Median(cpuRatios);
            var report = new JsonObject
            {
                ["benchmark"] = "teacher-cache",
                ["date"] = DateTime.UtcNow.ToString("yyyy-MM-dd HH:mm", CultureInfo.InvariantCulture),
                ["shape"] = $"student gpt2 2x128, teacher gpt2 6x384, V {Vocab}, batch {Batch}x{Seq}, k {K}, {steps} timed steps after {warmup} warm-up; write/forward over {Batch * (steps + warmup)} rows, {(rowsPerChunk > 0 ? rowsPerChunk : Batch * (steps + warmup))} rows per chunk, {repeats} pair(s)",
                ["results"] = results,
                ["summary"] = new JsonObject
                {
                    ["write_over_forward_throughput"] = Math.Round(writeRatio, 3),
                    ["write_over_forward_throughput_per_pair"] = new JsonArray([.. ratios.Select(r => (JsonNode)Math.Round(r, 3))]),
                    ["forward_cpu_over_write_cpu"] = Math.Round(cpuRatio, 3),
                    ["target_write_ratio_min"] = 0.9,
                    ["write_target_met"] = writeRatio >= 0.9,
                },
            };
            if (!writeOnly)
            {
                var summary = report["summary"]!.AsObject();
                summary["cached_over_online_step"] = Math.Round(stepRatio, 3);
                summary["cached_over_online_peak_rss"] = Math.Round(Get("cached", "peak_rss_mb") / Get("online", "peak_rss_mb"), 3);
                summary["target_step_ratio_max"] = 0.6;
                summary["step_target_met"] = stepRatio <= 0.6;
            }

            var text = report.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
            if (output is not null)
            {
                File.WriteAllText(output, text);
            }

            Console.WriteLine(text);
            return 0;
        }
        finally
        {
            if (Directory.Exists(dir))
            {
                Directory.Delete(dir, recursive: true);
            }
        }
    }

    /// <summary>The child: one measurement (<c>write</c>, <c>forward</c>, <c>online</c> or <c>cached</c>), one JSON line.</summary>
    internal static int Worker(string[] args)
    {
        var mode = args[0];
        var dir = args[1];
        var steps = int.Parse(args[2], CultureInfo.InvariantCulture);
        var warmup = int.Parse(args[3], CultureInfo.InvariantCulture);
        var rows = Batch * (steps + warmup);
        var rowsPerChunk = args.Length > 4 && int.Parse(args[4], CultureInfo.InvariantCulture) is > 0 and var r ? r : rows;
        var data = new RandomRows(rows);
        var cpuStart = Process.GetCurrentProcess().TotalProcessorTime;
        JsonObject result;
        switch (mode)
        {
            case "write":
            {
                using var teacher = Teacher();

                // Untimed warm-up, as the forward worker's: one batch written into a throwaway cache (first-call JIT of the
                // writer, the Arrow IPC writer, JSON, the top-k kernel and libtorch's first forward), then the timed cache.
                var warmDir = dir + "-warm";
                Writer(warmDir, data.Examples.Take(Batch).ToArray(), Batch).WriteChunksAsync(new LocalModelTopKProducer(teacher)).GetAwaiter().GetResult();
                TeacherCacheWriter.Merge(warmDir);
                Directory.Delete(warmDir, recursive: true);

                var cpu0 = Process.GetCurrentProcess().TotalProcessorTime;
                var clock = Stopwatch.StartNew();
                Writer(dir, data.Examples, rowsPerChunk).WriteChunksAsync(new LocalModelTopKProducer(teacher)).GetAwaiter().GetResult();
                TeacherCacheWriter.Merge(dir);
                var seconds = clock.Elapsed.TotalSeconds;
                result = new JsonObject { ["seconds"] = Math.Round(seconds, 3), ["cpu_s"] = Math.Round((Process.GetCurrentProcess().TotalProcessorTime - cpu0).TotalSeconds, 3), ["positions_per_s"] = Math.Round(data.Positions / seconds, 1), ["cache_mb"] = Math.Round(Directory.EnumerateFiles(dir).Sum(f => new FileInfo(f).Length) / 1e6, 2) };
                break;
            }

            case "profile":
            {
                // Where the writer's time goes: bare forward vs the producer (forward + top-k + tail + copies) per batch, then
                // the writer fed precomputed results (Arrow building, file write, fsync, hashing, sidecar, merge).
                using var teacher = Teacher();
                var producer = new LocalModelTopKProducer(teacher);
                var batches = rows / Batch;
                double forwardS = 0, produceS = 0, forwardCpu = 0, produceCpu = 0;
                var produced = new List<TopKSequence>();
                for (var b = 0; b < batches; b++)
                {
                    var rowsOf = data.Examples.Skip(b * Batch).Take(Batch).ToArray();
                    var (s0, c0) = (Stopwatch.GetTimestamp(), Process.GetCurrentProcess().TotalProcessorTime);
                    BareForward(teacher, data, b);

                    var (s1, c1) = (Stopwatch.GetTimestamp(), Process.GetCurrentProcess().TotalProcessorTime);
                    produced.AddRange(producer.ProduceAsync(rowsOf, K, CancellationToken.None).GetAwaiter().GetResult());
                    var (s2, c2) = (Stopwatch.GetTimestamp(), Process.GetCurrentProcess().TotalProcessorTime);
                    if (b > 0)
                    {
                        forwardS += Stopwatch.GetElapsedTime(s0, s1).TotalSeconds;
                        produceS += Stopwatch.GetElapsedTime(s1, s2).TotalSeconds;
                        forwardCpu += (c1 - c0).TotalSeconds;
                        produceCpu += (c2 - c1).TotalSeconds;
                    }
                }

                (double Wall, double Cpu, double MergeWall) Replay(string into)
                {
                    var (w0, wc0) = (Stopwatch.GetTimestamp(), Process.GetCurrentProcess().TotalProcessorTime);
                    Writer(into, data.Examples, rows).WriteChunksAsync(new ReplayProducer(produced)).GetAwaiter().GetResult();
                    var m0 = Stopwatch.GetTimestamp();
                    TeacherCacheWriter.Merge(into);
                    return (Stopwatch.GetElapsedTime(w0).TotalSeconds, (Process.GetCurrentProcess().TotalProcessorTime - wc0).TotalSeconds, Stopwatch.GetElapsedTime(m0).TotalSeconds);
                }

                var cold = Replay(dir);
                var warm = Replay(dir + "-warm");
                Directory.Delete(dir + "-warm", recursive: true);
                // The producer's post-processing, op by op, on one batch's logits (5 repeats, CPU seconds per repeat).
                var ops = new JsonObject();
                using (var scope = NewDisposeScope())
                using (var noGrad = no_grad())
                using (var batch = data.GetBatch(0, 0))
                {
                    var logits = teacher.Forward(new CausalLMInput { InputIds = batch.InputIds, AttentionMask = batch.AttentionMask }).Logits!.reshape(-1, Vocab);
                    var at = tensor(Enumerable.Range(0, Batch).SelectMany(r => Enumerable.Range(0, Seq - 1).Select(p => (long)((r * Seq) + p))).ToArray());
                    void Op(string name, Func<Tensor> f)
                    {
                        var c0 = Process.GetCurrentProcess().TotalProcessorTime;
                        var s0 = Stopwatch.GetTimestamp();
                        for (var rep = 0; rep < 5; rep++)
                        {
                            using var inner = NewDisposeScope();
                            f();
                        }

                        ops[name] = Math.Round(Stopwatch.GetElapsedTime(s0).TotalSeconds / 5, 5);
                        ops[name + "_cpu"] = Math.Round((Process.GetCurrentProcess().TotalProcessorTime - c0).TotalSeconds / 5, 5);
                    }

                    var sel = logits.index_select(0, at);
                    var lp = sel.log_softmax(-1);
                    var (tv, ti) = lp.topk(K, dim: -1);
                    Op("index_select", () => logits.index_select(0, at));
                    Op("log_softmax", () => sel.log_softmax(-1));
                    Op("topk", () => lp.topk(K, dim: -1).values);
                    Op("scatter_clone", () => lp.clone().scatter_(-1, ti, full_like(tv, double.NegativeInfinity)));
                    Op("clone", () => lp.clone());
                    Op("logsumexp", () => lp.logsumexp(-1));
                    Op("exp_sum_log", () => lp.exp().sum(-1).log());
                    var host = sel.contiguous().data<float>().ToArray();
                    var (hostIds, hostLp, hostTail) = (new int[host.Length / Vocab * K], new float[host.Length / Vocab * K], new float[host.Length / Vocab]);
                    Op("host_topk_and_tail", () => { HostTopK.Score(host, Vocab, K, hostIds, hostLp, hostTail); return sel; });
                    Op("host_topk_k1", () => { HostTopK.Score(host, Vocab, 1, hostIds.AsSpan(0, host.Length / Vocab), hostLp.AsSpan(0, host.Length / Vocab), hostTail); return sel; });
                    Op("copies", () => { _ = ti.to(ScalarType.Int32).cpu().data<int>().ToArray(); _ = tv.cpu().data<float>().ToArray(); return tv; });
                }

                result = new JsonObject
                {
                    ["ops_s"] = ops,
                    ["batches_timed"] = batches - 1,
                    ["forward_s_per_batch"] = Math.Round(forwardS / (batches - 1), 4),
                    ["produce_s_per_batch"] = Math.Round(produceS / (batches - 1), 4),
                    ["forward_cpu_s_per_batch"] = Math.Round(forwardCpu / (batches - 1), 4),
                    ["produce_cpu_s_per_batch"] = Math.Round(produceCpu / (batches - 1), 4),
                    ["writer_io_cold_s"] = Math.Round(cold.Wall, 4),
                    ["writer_io_cold_cpu_s"] = Math.Round(cold.Cpu, 4),
                    ["merge_cold_s"] = Math.Round(cold.MergeWall, 4),
                    ["writer_io_warm_s"] = Math.Round(warm.Wall, 4),
                    ["writer_io_warm_cpu_s"] = Math.Round(warm.Cpu, 4),
                    ["merge_warm_s"] = Math.Round(warm.MergeWall, 4),
                };
                break;
            }

            case "forward":
            {
                using var teacher = Teacher();

                // Untimed warm-up, as the write worker's: one batch (libtorch's first forward).
                BareForward(teacher, data, 0);

                var cpu0 = Process.GetCurrentProcess().TotalProcessorTime;
                var clock = Stopwatch.StartNew();
                for (var b = 0; b < rows / Batch; b++)
                {
                    BareForward(teacher, data, b);
                }

                var seconds = clock.Elapsed.TotalSeconds;
                result = new JsonObject { ["seconds"] = Math.Round(seconds, 3), ["cpu_s"] = Math.Round((Process.GetCurrentProcess().TotalProcessorTime - cpu0).TotalSeconds, 3), ["positions_per_s"] = Math.Round(data.Positions / seconds, 1) };
                break;
            }

            default:
            {
                var cached = mode == "cached";
                using var student = Model(layers: 2, hidden: 128, seed: 1);
                using var teacherModel = cached ? null : Teacher();
                using var cache = cached ? new CachedTopKTeacher(TeacherCacheReader.Open(dir)) : null;
                ITeacher teacher = cached ? cache! : new LocalModelTeacher(teacherModel!);
                var objective = DistillObjectives.Create(cached ? "sparse_forward_kl" : "forward_kl", new LossesOptions { Divergence = { Temperature = 1.0 } });
                var output = Path.Combine(dir, "run-" + mode);
                var stamps = new List<double>();
                var clock = Stopwatch.StartNew();
                var trainer = new DistillationTrainer(student, objective, teacher, new TrainingOptions
                {
                    OutputDirectory = output,
                    MaxSteps = steps + warmup,
                    SaveCheckpoints = false,
                    TensorBoard = false,
                    LogEverySteps = 1,
                    PrefetchBatches = false,
                    Precision = TrainingPrecision.Float32,
                })
                {
                    Progress = new Stamps(stamps, clock),
                };
                trainer.Train(data);
                var times = stamps.Zip(stamps.Skip(1), (a, b) => b - a).Skip(warmup - 1).Order().ToList();
                result = new JsonObject { ["step_median_s"] = Math.Round(times[times.Count / 2], 4), ["steps_timed"] = times.Count };
                break;
            }
        }

        result["process_cpu_s"] = Math.Round((Process.GetCurrentProcess().TotalProcessorTime - cpuStart).TotalSeconds, 3);
        result["peak_rss_mb"] = Math.Round(ProcStats.StatusKb("VmHWM") / 1024.0, 1);
        result["threads"] = get_num_threads();
        Console.WriteLine(result.ToJsonString());
        return 0;
    }

    /// <summary>A cache writer over <paramref name="examples"/> with the benchmark's identity, k and batch size.</summary>
    private static TeacherCacheWriter Writer(string dir, IReadOnlyList<TeacherCacheExample> examples, int rowsPerChunk) =>
        new(dir, new TeacherCacheIdentity { Teacher = "bench", TokenizerHash = "random", Template = "none", K = K }, examples, new TeacherCacheWriterOptions { RowsPerChunk = rowsPerChunk, BatchSize = Batch });

    /// <summary>The teacher's bare forward over batch <paramref name="index"/>, synchronised by reading one scalar back.</summary>
    private static void BareForward(CausalLM teacher, RandomRows data, int index)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        using var batch = data.GetBatch(0, index);
        _ = teacher.Forward(new CausalLMInput { InputIds = batch.InputIds, AttentionMask = batch.AttentionMask }).Logits!.sum().item<float>();
    }

    private static CausalLM Teacher()
    {
        var teacher = Model(layers: 6, hidden: 384, seed: 2);
        teacher.eval();
        return teacher;
    }

    private static CausalLM Model(int layers, int hidden, long seed) => AutoCausalLM.FromConfig(new Gpt2Config
    {
        ModelType = "gpt2",
        VocabSize = Vocab,
        HiddenSize = hidden,
        NumHiddenLayers = layers,
        NumAttentionHeads = hidden / 64,
        MaxPositionEmbeddings = Seq,
        ResidualDropout = 0,
        EmbeddingDropout = 0,
        AttentionDropout = 0,
    }, seed);

    private static JsonObject RunWorker(string mode, string dir, int steps, int warmup, int rowsPerChunk)
    {
        var exe = Environment.ProcessPath!;
        var psi = new ProcessStartInfo(exe) { RedirectStandardOutput = true, UseShellExecute = false };
        if (Path.GetFileNameWithoutExtension(exe) == "dotnet")
        {
            psi.ArgumentList.Add(typeof(TeacherCacheBench).Assembly.Location);
        }

        foreach (var a in new[] { "teacher-cache-worker", mode, dir, steps.ToString(CultureInfo.InvariantCulture), warmup.ToString(CultureInfo.InvariantCulture), rowsPerChunk.ToString(CultureInfo.InvariantCulture) })
        {
            psi.ArgumentList.Add(a);
        }

        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        var line = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).LastOrDefault(l => l.StartsWith('{'));
        return p.ExitCode == 0 && line is not null ? JsonNode.Parse(line)!.AsObject() : new JsonObject { ["error"] = $"worker exit code {p.ExitCode}" };
    }

    /// <summary>Rows of random ids (seeded): input = 128 ids, labels = the next id at positions 0 … 126, position 127 unscored.</summary>
    private sealed class RandomRows : IBatchSource
    {
        private readonly int[][] ids;

        public RandomRows(int count)
        {
            var rng = new Random(7);
            ids = [.. Enumerable.Range(0, count).Select(_ => Enumerable.Range(0, Seq + 1).Select(_ => rng.Next(Vocab)).ToArray())];
            Examples = [.. ids.Select((r, i) => new TeacherCacheExample(i, r[..Seq], [.. Enumerable.Range(0, Seq - 1)]))];
        }

        public IReadOnlyList<TeacherCacheExample> Examples { get; }

        public long Positions => (long)ids.Length * (Seq - 1);

        public int BatchesPerEpoch => ids.Length / Batch;

        public DistillationBatch GetBatch(int epoch, int index)
        {
            var input = new long[Batch * Seq];
            var labels = new long[Batch * Seq];
            for (var r = 0; r < Batch; r++)
            {
                var row = ids[(index * Batch) + r];
                for (var t = 0; t < Seq; t++)
                {
                    input[(r * Seq) + t] = row[t];
                    labels[(r * Seq) + t] = t < Seq - 1 ? row[t + 1] : DistillationBatch.IgnoreIndex;
                }
            }

            return new DistillationBatch
            {
                InputIds = tensor(input, [Batch, Seq]),
                AttentionMask = ones(Batch, Seq, dtype: ScalarType.Int64),
                Labels = tensor(labels, [Batch, Seq]),
            };
        }
    }

    /// <summary>Hands back precomputed results in order (the writer's own cost without the teacher).</summary>
    private sealed class ReplayProducer(List<TopKSequence> results) : ITopKProducer
    {
        private int next;

        public string Description => "replay";

        public Task<IReadOnlyList<TopKSequence>> ProduceAsync(IReadOnlyList<TeacherCacheExample> examples, int k, CancellationToken cancellationToken)
        {
            var slice = results.GetRange(next % results.Count, examples.Count);
            next += examples.Count;
            return Task.FromResult<IReadOnlyList<TopKSequence>>(slice);
        }
    }

    private sealed class Stamps(List<double> into, Stopwatch clock) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => into.Add(clock.Elapsed.TotalSeconds);
    }
}
