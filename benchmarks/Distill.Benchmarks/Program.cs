using BenchmarkDotNet.Running;
using Distill.Benchmarks;
using Distill.Runtime;

// Distill benchmarks, dispatched by the first argument. The JSON sections print one object whose "summary" keys match
// benchmarks/torch_ref/bench.py (the PyTorch reference), so benchmarks/compare.py pairs them:
//   kd [flags]                calibration + KD loss grid (naive vs chunked, time and child-process peak RSS)
//   kd-worker ...             internal: one KD variant/shape in a fresh process
//   gen|forward|train|models  GPT-2-small-shaped generation / forward / training step (naive and chunked objective) [--layers 12 --prompt 32 --new 64 --batch 4 --seq 128 --out FILE]
//   kd-profile [--chunks ...]  the fused forward-KL kernel's chunk loop, time per phase and chunk size
//   bf16 [--shapes CxHxV,...]  float32 vs bfloat16 matrix products of the fused kernel's chunk (time, logits error)
//   onpolicy [--quick] [...]  time split of an on-policy (GKD) step: student generation / teacher forward / student fwd+bwd+step
//   threads [--steps 8]       CPU threading default vs torch's, as-is and with every core busy (child process per config)
//   teacher-cache [--steps 6]  training step with a cached top-k teacher vs the teacher in process (child process each), cache write vs bare forward throughput
//                              (--repeats R write/forward pairs, --rows-per-chunk N, --write-only; worker mode "profile" breaks the writer's time down)
//   bdn [BDN args]            BenchmarkDotNet (e.g. bdn --filter *KdLoss*)
DistillRuntime.EnsureNativeRuntime();
if (args.Length == 0)
{
    return Usage();
}

switch (args[0])
{
    case "kd":
        return KdReferenceBench.Run(args[1..]);
    case "kd-worker":
        return KdReferenceBench.Worker(args[1..]);
    case "threads":
        return ThreadsBench.Run(args[1..]);
    case "bf16":
        return Bf16Probe.Run(args[1..]);
    case "kd-profile":
        return KdProfile.Run(args[1..]);
    case "threads-worker":
        return ThreadsBench.Worker(args[1..]);
    case "teacher-cache":
        return TeacherCacheBench.Run(args[1..]);
    case "teacher-cache-worker":
        return TeacherCacheBench.Worker(args[1..]);
    case "bdn":
        BenchmarkSwitcher.FromAssembly(typeof(KdLossBenchmark).Assembly).Run(args[1..]);
        return 0;
    case "onpolicy":
        var onPolicy = ForwardBenchmarkHarness.ParseOptions([.. args[1..].Where(a => a != "--quick")]);
        ForwardBenchmarkHarness.Emit(args.Contains("--quick") ? OnPolicyBenchmark.Quick(onPolicy) : onPolicy, OnPolicyBenchmark.Run);
        return 0;
    case "gen" or "forward" or "train" or "models":
        var options = ForwardBenchmarkHarness.ParseOptions(args[1..]);
        switch (args[0])
        {
            case "gen":
                ForwardBenchmarkHarness.Emit(options, GenerationBenchmark.Run);
                break;
            case "forward":
                ForwardBenchmarkHarness.Emit(options, ForwardBenchmark.Run);
                break;
            case "train":
                ForwardBenchmarkHarness.Emit(options, TrainBenchmark.Run, TrainBenchmark.RunChunked);
                break;
            default:
                ForwardBenchmarkHarness.Emit(options, ForwardBenchmark.Run, GenerationBenchmark.Run, TrainBenchmark.Run, TrainBenchmark.RunChunked);
                break;
        }

        return 0;
    default:
        return Usage();
}

static int Usage()
{
    Console.Error.WriteLine("usage: Distill.Benchmarks kd [--quick] [--kd-grid NxHxV,...] [--out FILE]");
    Console.Error.WriteLine("       Distill.Benchmarks gen|forward|train|models [--threads 2] [--warmup 1] [--repeats 3] [--layers 12] [--prompt 32] [--new 64] [--batch 4] [--seq 128] [--seed 0] [--out FILE]");
    Console.Error.WriteLine("       Distill.Benchmarks onpolicy [--quick] [--threads 2] [--layers 12] [--prompt 32] [--new 64] [--batch 4] [--repeats 3]");
    Console.Error.WriteLine("       Distill.Benchmarks threads [--steps 8] [--out FILE]");
    Console.Error.WriteLine("       Distill.Benchmarks bf16 [--shapes 128x1024x32000,...] [--repeats 5] [--out FILE]");
    Console.Error.WriteLine("       Distill.Benchmarks teacher-cache [--steps 6] [--warmup 2] [--repeats 1] [--rows-per-chunk N] [--write-only] [--out FILE]");
    Console.Error.WriteLine("       Distill.Benchmarks bdn [BenchmarkDotNet args]");
    return 2;
}
