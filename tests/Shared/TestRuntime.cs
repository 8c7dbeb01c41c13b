using System.Runtime.CompilerServices;
using Distill.Runtime;
using TorchSharp;

namespace Distill.Tests.Shared;

/// <summary>Loads the native runtime (with Distill's GLIBCXX fix) before any test in the assembly touches torch.</summary>
internal static class TestRuntime
{
#pragma warning disable CA2255 // Test assemblies: run before the first torch call of any test.
    [ModuleInitializer]
    internal static void Initialize() => DistillRuntime.EnsureNativeRuntime();
#pragma warning restore CA2255

    /// <summary>Devices to run device-agnostic tests on: CPU always, CUDA when present.</summary>
    internal static IEnumerable<torch.Device> Devices()
    {
        yield return torch.CPU;
        if (torch.cuda.is_available())
        {
            yield return torch.CUDA;
        }
    }

    /// <summary>A fresh empty folder under the temp directory, deleted by the returned handle.</summary>
    internal static TempFolder CreateTempFolder() => new();
}

/// <summary>A temporary folder deleted on dispose.</summary>
internal sealed class TempFolder : IDisposable
{
    public TempFolder()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "distill-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
            // Best effort: a test that failed may still hold a file open.
        }
    }
}

/// <summary>
/// Tests that depend on torch's process-wide state (the global random generator, thread settings) join this collection:
/// it runs alone, after the parallel collections, so no other test draws from the generator in between.
/// </summary>
[CollectionDefinition("Sequential", DisableParallelization = true)]
public sealed class SequentialCollection
{
}
