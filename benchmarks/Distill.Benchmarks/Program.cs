using Distill.Benchmarks;
using Distill.Runtime;

// Distill benchmarks, dispatched by the first argument. Each section prints one JSON object whose "summary" keys match
// shared/bench/torch_ref/bench.py, so compare.py pairs them:
//   dotnet run -c Release --project benchmarks/Distill.Benchmarks -- gen [--layers 12 --prompt 32 --new 64 --out gen.json]
//   dotnet run -c Release --project benchmarks/Distill.Benchmarks -- forward|train [--layers 12 --batch 4 --seq 128]
//   dotnet run -c Release --project benchmarks/Distill.Benchmarks -- models   (gen + forward + train in one JSON)
DistillRuntime.EnsureNativeRuntime();
var section = args.Length > 0 ? args[0] : "help";
var options = ForwardBenchmarkHarness.ParseOptions(args.Skip(1).ToArray());
switch (section)
{
    case "gen":
        ForwardBenchmarkHarness.Emit(options, GenerationBenchmark.Run);
        break;
    case "forward":
        ForwardBenchmarkHarness.Emit(options, ForwardBenchmark.Run);
        break;
    case "train":
        ForwardBenchmarkHarness.Emit(options, TrainBenchmark.Run);
        break;
    case "models":
        ForwardBenchmarkHarness.Emit(options, ForwardBenchmark.Run, GenerationBenchmark.Run, TrainBenchmark.Run);
        break;
    default:
        Console.Error.WriteLine("usage: Distill.Benchmarks gen|forward|train|models [--threads 2] [--warmup 1] [--repeats 3] [--layers 12] [--prompt 32] [--new 64] [--batch 4] [--seq 128] [--seed 0] [--out FILE]");
        return 2;
}

return 0;
