using System.Globalization;
using System.Runtime.InteropServices;

namespace Distill.Runtime;

/// <summary>What Distill chose for torch's CPU threading before libtorch loaded (see <see cref="DistillRuntime.CpuThreading"/>).</summary>
/// <param name="Threads">Intra-op threads torch starts with (<c>OMP_NUM_THREADS</c>).</param>
/// <param name="PhysicalCores">Physical cores available to this process (logical processors on SMT siblings counted once).</param>
/// <param name="LogicalProcessors">Logical processors available to this process (<see cref="Environment.ProcessorCount"/>).</param>
/// <param name="WaitPolicy">The OpenMP wait policy in effect (<c>OMP_WAIT_POLICY</c>): <c>PASSIVE</c> unless the environment set another.</param>
/// <param name="Reason">How the values were chosen, for the log.</param>
public sealed record CpuThreadingReport(int Threads, int PhysicalCores, int LogicalProcessors, string WaitPolicy, string Reason);

/// <summary>
/// Distill's default CPU threading: one intra-op thread per physical core (not per logical processor) and OpenMP's
/// <c>PASSIVE</c> wait policy, so idle worker threads sleep instead of spinning. On a loaded machine spinning OpenMP workers
/// oversubscribe the cores (measured: 20 tok/s with torch's defaults vs ~800 tok/s with one thread on a busy 2-core box).
/// </summary>
/// <remarks>
/// libgomp (shipped inside libtorch) reads <c>OMP_WAIT_POLICY</c> and <c>OMP_NUM_THREADS</c> once, when it is loaded, so they
/// are set in the native process environment before the first libtorch load (the native runtime loader does this first).
/// Variables the user already set are left alone; <c>DISTILL_DISABLE_THREAD_DEFAULTS=1</c> turns the defaults off.
/// </remarks>
internal static partial class CpuThreading
{
    internal const string DisableVariable = "DISTILL_DISABLE_THREAD_DEFAULTS";
    internal const string NumThreadsVariable = "OMP_NUM_THREADS";
    internal const string WaitPolicyVariable = "OMP_WAIT_POLICY";
    internal const string PassivePolicy = "PASSIVE";

    /// <summary>Sets the defaults in the process environment (unless present) and returns what is in effect.</summary>
    /// <param name="getEnvironmentVariable">Reads a variable (injectable for tests).</param>
    /// <param name="setEnvironmentVariable">Sets a variable in the native and managed environment (injectable for tests).</param>
    /// <param name="physicalCores">Physical cores available to the process.</param>
    /// <param name="logicalProcessors">Logical processors available to the process.</param>
    /// <returns>The report.</returns>
    internal static CpuThreadingReport Apply(Func<string, string?> getEnvironmentVariable, Action<string, string> setEnvironmentVariable, int physicalCores, int logicalProcessors)
    {
        var policy = getEnvironmentVariable(WaitPolicyVariable);
        var threadsText = getEnvironmentVariable(NumThreadsVariable);
        int? userThreads = int.TryParse(threadsText?.Split(',')[0], NumberStyles.None, CultureInfo.InvariantCulture, out var t) && t > 0 ? t : null;
        string? disable = getEnvironmentVariable(DisableVariable);
        if (disable is "1" || string.Equals(disable, "true", StringComparison.OrdinalIgnoreCase))
        {
            return new(userThreads ?? logicalProcessors, physicalCores, logicalProcessors, policy ?? "(OpenMP default)", $"{DisableVariable}={disable}: torch's own threading defaults");
        }

        var reasons = new List<string>();
        if (string.IsNullOrEmpty(policy))
        {
            policy = PassivePolicy;
            setEnvironmentVariable(WaitPolicyVariable, policy);
            reasons.Add($"{WaitPolicyVariable}={policy} set by Distill (idle OpenMP threads sleep instead of spinning)");
        }
        else
        {
            reasons.Add($"{WaitPolicyVariable}={policy} from the environment");
        }

        int threads;
        if (userThreads is int fromEnvironment)
        {
            threads = fromEnvironment;
            reasons.Add($"{NumThreadsVariable}={threadsText} from the environment");
        }
        else
        {
            threads = Math.Max(1, Math.Min(physicalCores, logicalProcessors));
            setEnvironmentVariable(NumThreadsVariable, threads.ToString(CultureInfo.InvariantCulture));
            reasons.Add($"{NumThreadsVariable}={threads} set by Distill (one thread per physical core)");
        }

        return new(threads, physicalCores, logicalProcessors, policy, string.Join("; ", reasons));
    }

    /// <summary>Sets a variable in the native environment (read by libgomp through <c>getenv</c>) and in .NET's view of it.</summary>
    /// <param name="name">Variable name.</param>
    /// <param name="value">Value.</param>
    internal static void SetNative(string name, string value)
    {
        // On Unix, Environment.SetEnvironmentVariable changes only .NET's copy; native code reads libc's environ.
        if (!OperatingSystem.IsWindows())
        {
            _ = NativeSetEnv(name, value, 1);
        }

        Environment.SetEnvironmentVariable(name, value);
    }

    /// <summary>Physical cores among the processors this process may run on (Linux: distinct (package, core) pairs of <c>/sys</c>'s topology); elsewhere the logical count.</summary>
    /// <returns>At least 1.</returns>
    internal static int CountPhysicalCores()
    {
        var logical = Environment.ProcessorCount;
        if (!OperatingSystem.IsLinux())
        {
            return logical;
        }

        try
        {
            var cores = new HashSet<(string Package, string Core)>();
            foreach (var cpu in Directory.EnumerateDirectories("/sys/devices/system/cpu", "cpu*"))
            {
                var topology = Path.Combine(cpu, "topology");
                var coreId = Path.Combine(topology, "core_id");
                if (!File.Exists(coreId) || !char.IsAsciiDigit(Path.GetFileName(cpu)[^1]))
                {
                    continue;
                }

                var online = Path.Combine(cpu, "online");
                if (File.Exists(online) && File.ReadAllText(online).Trim() == "0")
                {
                    continue;
                }

                var package = Path.Combine(topology, "physical_package_id");
                cores.Add((File.Exists(package) ? File.ReadAllText(package).Trim() : "0", File.ReadAllText(coreId).Trim()));
            }

            if (cores.Count == 0)
            {
                return logical;
            }

            // Affinity or a cgroup quota can allow fewer processors than the machine has; SMT siblings share a core.
            var onlineLogical = Directory.EnumerateDirectories("/sys/devices/system/cpu", "cpu*").Count(d => File.Exists(Path.Combine(d, "topology", "core_id")));
            var threadsPerCore = Math.Max(1, onlineLogical / cores.Count);
            return Math.Max(1, Math.Min(cores.Count, (logical + threadsPerCore - 1) / threadsPerCore));
        }
        catch (IOException)
        {
            return logical;
        }
        catch (UnauthorizedAccessException)
        {
            return logical;
        }
    }

    [LibraryImport("libc", EntryPoint = "setenv", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int NativeSetEnv(string name, string value, int overwrite);
}
