using Distill.Runtime;
using TorchSharp;

namespace Distill.Core.Tests.Runtime;

public class NativeRuntimeTests
{
    [Fact]
    public void EnsureNativeRuntime_OnThisMachine_TensorOpRuns()
    {
        var report = DistillRuntime.EnsureNativeRuntime();
        Assert.NotEqual(NativeRuntimeOutcome.Failed, report.Outcome);
        using var scope = torch.NewDisposeScope();
        var a = torch.arange(6, dtype: torch.float32).reshape(2, 3);
        var b = torch.ones(3, 2);
        var c = torch.matmul(a, b); // rows of a summed: [0+1+2, 3+4+5] = [3, 12], twice each
        Assert.Equal(new float[] { 3, 3, 12, 12 }, c.data<float>().ToArray());
    }

    [Fact]
    public void EnsureNativeRuntime_WhenPatched_LoadedCopyIsCachedWeakAndMapped()
    {
        var report = DistillRuntime.EnsureNativeRuntime();
        if (report.Outcome != NativeRuntimeOutcome.Patched)
        {
            // A machine whose libstdc++ is new enough (GCC 13+) needs no patch; nothing more to check there.
            Assert.Equal(NativeRuntimeOutcome.NotNeeded, report.Outcome);
            return;
        }

        string patched = report.Actions.Last()["preloaded ".Length..];
        Assert.StartsWith(TorchNativeLoader.CacheRoot(), patched, StringComparison.Ordinal);
        var image = ElfImage.Parse(File.ReadAllBytes(patched), patched);
        Assert.True(image.ReadVersionNeeds().Single(n => n.Version == "GLIBCXX_3.4.32").IsWeak);
        Assert.Contains(File.ReadLines("/proc/self/maps"), l => l.EndsWith(patched, StringComparison.Ordinal));
    }

    [Fact]
    public void Run_DisabledByEnvironment_DoesNothing()
    {
        var report = TorchNativeLoader.Run(name => name == TorchNativeLoader.DisableVariable ? "1" : null);
        Assert.Equal(OperatingSystem.IsLinux() ? NativeRuntimeOutcome.Disabled : NativeRuntimeOutcome.NotNeeded, report.Outcome);
        Assert.Empty(report.Actions);
    }

    [Fact]
    public void Run_AfterTorchIsLoaded_ReportsAlreadyLoaded()
    {
        using var t = torch.zeros(1); // make sure the native library is in
        var report = TorchNativeLoader.Run(_ => null);
        Assert.True(report.Outcome is NativeRuntimeOutcome.AlreadyLoaded or NativeRuntimeOutcome.NotNeeded, report.Message);
    }
}
