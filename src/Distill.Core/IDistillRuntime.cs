using Distill.Runtime;

namespace Distill;

/// <summary>The initialised native runtime and compute selection of a host; resolve it to make sure torch is ready.</summary>
/// <remarks>Singleton, thread-safe, immutable after construction.</remarks>
public interface IDistillRuntime
{
    /// <summary>Gets what the native loader did.</summary>
    NativeRuntimeReport NativeRuntime { get; }

    /// <summary>Gets the selected device and dtype.</summary>
    ComputeContext Compute { get; }
}
