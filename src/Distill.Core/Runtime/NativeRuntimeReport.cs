namespace Distill.Runtime;

/// <summary>What the native runtime loader found and did; logged by <see cref="DistillRuntime"/>.</summary>
/// <param name="Outcome">The overall result.</param>
/// <param name="Message">A one-line human-readable summary.</param>
/// <param name="Actions">Each step taken (files read, patched, cached, loaded), in order.</param>
public sealed record NativeRuntimeReport(NativeRuntimeOutcome Outcome, string Message, IReadOnlyList<string> Actions);

/// <summary>The outcome of <see cref="DistillRuntime.EnsureNativeRuntime"/>.</summary>
public enum NativeRuntimeOutcome
{
    /// <summary>Nothing to do: not Linux, or the system libstdc++ provides every version TorchSharp needs.</summary>
    NotNeeded,

    /// <summary>The fix was turned off with the <c>DISTILL_DISABLE_NATIVE_FIX</c> environment variable.</summary>
    Disabled,

    /// <summary>A patched copy of libLibTorchSharp was made (or reused from the cache) and preloaded with its dependencies.</summary>
    Patched,

    /// <summary>TorchSharp's native library was already loaded before Distill could act.</summary>
    AlreadyLoaded,

    /// <summary>The native libraries could not be located; TorchSharp's own loader will report the problem.</summary>
    NotFound,

    /// <summary>A fix was needed but could not be applied safely; <see cref="NativeRuntimeReport.Message"/> says why.</summary>
    Failed,
}
