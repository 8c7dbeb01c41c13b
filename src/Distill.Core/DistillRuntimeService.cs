using Distill.Runtime;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using TorchSharp;

namespace Distill;

/// <summary>Default <see cref="IDistillRuntime"/>: loads the native runtime, selects compute, applies threads and seed, logs it all.</summary>
internal sealed class DistillRuntimeService : IDistillRuntime
{
    public DistillRuntimeService(IOptions<DistillOptions> options, ILoggerFactory? loggerFactory = null)
    {
        var logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger<DistillRuntimeService>();
        var o = options.Value;
        NativeRuntime = DistillRuntime.EnsureNativeRuntime(logger);
        Compute = DistillRuntime.SelectCompute(o.Device, o.DType, logger);
        var cpu = DistillRuntime.CpuThreading;
        if (o.Threads is int threads)
        {
            torch.set_num_threads(threads);
            Log.Threads(logger, threads, $"{nameof(DistillOptions)}.{nameof(DistillOptions.Threads)}; {cpu.WaitPolicy} OpenMP wait policy", cpu.PhysicalCores, cpu.LogicalProcessors);
        }
        else
        {
            Log.Threads(logger, torch.get_num_threads(), cpu.Reason, cpu.PhysicalCores, cpu.LogicalProcessors);
        }

        torch.manual_seed(o.Seed);
    }

    public NativeRuntimeReport NativeRuntime { get; }

    public ComputeContext Compute { get; }
}
