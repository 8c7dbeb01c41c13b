using System.Runtime.CompilerServices;
using Microsoft.Extensions.Logging;

namespace Distill.Runtime;

/// <summary>
/// Entry point to the native runtime: loads TorchSharp's native libraries (with the GLIBCXX fix where needed) and
/// selects the compute device and dtype. Call <see cref="EnsureNativeRuntime"/> before the first TorchSharp call when
/// you use TorchSharp directly; <c>services.AddDistill()</c> and every Distill entry point do it for you.
/// </summary>
/// <remarks>
/// Thread-safe; the native fix runs at most once per process and is also triggered by a module initializer when the
/// Distill.Core assembly is first used. Turn it off with <c>DISTILL_DISABLE_NATIVE_FIX=1</c>.
/// </remarks>
public static class DistillRuntime
{
    /// <summary>
    /// Makes sure TorchSharp's native libraries can load on this machine and returns what was done; logs the outcome
    /// to <paramref name="logger"/> when one is given.
    /// </summary>
    /// <param name="logger">Receives one message with the outcome and one per action at Debug level.</param>
    /// <returns>The report of the (single, cached) run.</returns>
    public static NativeRuntimeReport EnsureNativeRuntime(ILogger? logger = null)
    {
        var report = TorchNativeLoader.Ensure();
        if (logger is not null)
        {
            foreach (string action in report.Actions)
            {
                Log.NativeAction(logger, action);
            }

            if (report.Outcome == NativeRuntimeOutcome.Failed)
            {
                Log.NativeFixFailed(logger, report.Message);
            }
            else
            {
                Log.NativeOutcome(logger, report.Outcome, report.Message);
            }
        }

        return report;
    }

    /// <summary>
    /// Gets Distill's CPU threading choice, made before libtorch loaded: one intra-op thread per physical core and OpenMP's
    /// <c>PASSIVE</c> wait policy, unless <c>OMP_NUM_THREADS</c> / <c>OMP_WAIT_POLICY</c> were set (they win) or
    /// <c>DISTILL_DISABLE_THREAD_DEFAULTS=1</c>. <c>DistillOptions.Threads</c> (or <c>torch.set_num_threads</c>) still changes the thread count later.
    /// </summary>
    public static CpuThreadingReport CpuThreading => TorchNativeLoader.Threading;

    /// <summary>Selects device and dtype from option strings (see <see cref="DistillOptions"/>) and logs the choice.</summary>
    /// <param name="device"><c>auto</c>, <c>cpu</c>, <c>cuda</c> or <c>cuda:N</c>.</param>
    /// <param name="dtype"><c>auto</c>, <c>float32</c>, <c>bfloat16</c> or <c>float16</c>.</param>
    /// <param name="logger">Optional logger for the decision.</param>
    public static ComputeContext SelectCompute(string device = "auto", string dtype = "auto", ILogger? logger = null)
    {
        TorchNativeLoader.Ensure(); // logged by EnsureNativeRuntime when the caller asks; not a second time here

        var context = ComputeSelector.Select(device, dtype);
        if (logger is not null)
        {
            Log.ComputeSelected(logger, context.Device.ToString(), context.DType.ToString(), context.Reason);
        }

        return context;
    }

#pragma warning disable CA2255 // The whole point: the fix must run before any TorchSharp call a Distill API makes.
    [ModuleInitializer]
    internal static void InitializeModule()
#pragma warning restore CA2255
    {
        TorchNativeLoader.Ensure();
    }
}
