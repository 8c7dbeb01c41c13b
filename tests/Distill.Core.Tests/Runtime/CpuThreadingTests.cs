using System.Runtime.InteropServices;
using Distill.Runtime;

namespace Distill.Core.Tests.Runtime;

public partial class CpuThreadingTests
{
    private static (CpuThreadingReport Report, Dictionary<string, string> Set) Apply(Dictionary<string, string?> environment, int physical, int logical)
    {
        var set = new Dictionary<string, string>(StringComparer.Ordinal);
        var report = CpuThreading.Apply(n => environment.GetValueOrDefault(n), (n, v) => set[n] = v, physical, logical);
        return (report, set);
    }

    [Fact]
    public void Apply_EmptyEnvironment_PassivePolicyAndOneThreadPerPhysicalCore()
    {
        var (report, set) = Apply([], physical: 4, logical: 8);
        Assert.Equal("PASSIVE", set["OMP_WAIT_POLICY"]);
        Assert.Equal("4", set["OMP_NUM_THREADS"]);
        Assert.Equal(4, report.Threads);
        Assert.Equal("PASSIVE", report.WaitPolicy);
        Assert.Contains("physical core", report.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Apply_AffinityBelowPhysicalCores_UsesTheSmallerCount()
    {
        var (report, set) = Apply([], physical: 8, logical: 3);
        Assert.Equal(3, report.Threads);
        Assert.Equal("3", set["OMP_NUM_THREADS"]);
    }

    [Fact]
    public void Apply_UserVariables_AreLeftAlone()
    {
        var (report, set) = Apply(new() { ["OMP_WAIT_POLICY"] = "ACTIVE", ["OMP_NUM_THREADS"] = "6,2" }, physical: 2, logical: 2);
        Assert.Empty(set);
        Assert.Equal(6, report.Threads);
        Assert.Equal("ACTIVE", report.WaitPolicy);
        Assert.Contains("from the environment", report.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Apply_Disabled_SetsNothing()
    {
        var (report, set) = Apply(new() { ["DISTILL_DISABLE_THREAD_DEFAULTS"] = "1" }, physical: 2, logical: 4);
        Assert.Empty(set);
        Assert.Equal(4, report.Threads);
        Assert.Contains("DISTILL_DISABLE_THREAD_DEFAULTS", report.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void CountPhysicalCores_IsBetweenOneAndTheLogicalCount()
    {
        var cores = CpuThreading.CountPhysicalCores();
        Assert.InRange(cores, 1, Environment.ProcessorCount);
    }

    [Fact]
    public void CpuThreading_ThisProcess_NativeEnvironmentHoldsTheChoiceLibgompRead()
    {
        var report = DistillRuntime.CpuThreading;
        if (!OperatingSystem.IsLinux())
        {
            return;
        }

        // libgomp reads the C environment (getenv), not .NET's copy: the values must be there.
        Assert.Equal(report.WaitPolicy, Marshal.PtrToStringUTF8(GetEnv("OMP_WAIT_POLICY")));
        Assert.Equal(report.Threads.ToString(System.Globalization.CultureInfo.InvariantCulture), Marshal.PtrToStringUTF8(GetEnv("OMP_NUM_THREADS"))?.Split(',')[0]);
    }

    [LibraryImport("libc", EntryPoint = "getenv", StringMarshalling = StringMarshalling.Utf8)]
    private static partial nint GetEnv(string name);
}
