using Distill.Runtime;
using static TorchSharp.torch;

namespace Distill.Benchmarks.Runtime;

/// <summary>Loads the native runtime and pins the thread count (torch.set_num_threads, as the reference does).</summary>
internal static class NativeSetup
{
    internal static int Threads { get; private set; } = 2;

    internal static void Ensure(int threads = 2)
    {
        DistillRuntime.EnsureNativeRuntime();
        set_num_threads(threads);
        Threads = threads;
    }
}
