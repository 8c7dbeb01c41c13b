using BenchmarkDotNet.Running;
using Distill.Benchmarks;

// Dispatch on the first argument:
//   kd [flags]          calibration + KD loss grid, mirroring /work/shared/bench/torch_ref (JSON for compare.py)
//   kd-worker ...       internal: one KD variant/shape in a fresh process (peak RSS)
//   bdn [BDN args]      BenchmarkDotNet (e.g. bdn --filter *KdLoss*)
return args.Length == 0 ? Usage() : args[0] switch
{
    "kd" => KdReferenceBench.Run(args[1..]),
    "kd-worker" => KdReferenceBench.Worker(args[1..]),
    "bdn" => RunBdn(args[1..]),
    _ => Usage(),
};

static int RunBdn(string[] rest)
{
    BenchmarkSwitcher.FromAssembly(typeof(KdLossBenchmark).Assembly).Run(rest);
    return 0;
}

static int Usage()
{
    Console.Error.WriteLine("usage: Distill.Benchmarks kd [--quick] [--kd-grid NxHxV,...] [--out FILE] | bdn [BenchmarkDotNet args]");
    return 2;
}
