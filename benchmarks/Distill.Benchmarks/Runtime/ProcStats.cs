using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;

namespace Distill.Benchmarks.Runtime;

/// <summary>Linux /proc helpers: VmRSS/VmHWM, peak reset, CPU accounting and host info (same protocol as torch_ref/bench.py).</summary>
internal static class ProcStats
{
    /// <summary>A field of /proc/self/status in kB (e.g. VmRSS, VmHWM).</summary>
    internal static long StatusKb(string field)
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
        {
            if (line.StartsWith(field + ":", StringComparison.Ordinal))
            {
                return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);
            }
        }

        throw new InvalidOperationException($"/proc/self/status has no {field}.");
    }

    /// <summary>Resets VmHWM to the current RSS (Linux ≥ 4.0: write 5 to /proc/self/clear_refs).</summary>
    internal static void ResetPeak() => File.WriteAllText("/proc/self/clear_refs", "5");

    internal static string CpuModel()
    {
        foreach (var line in File.ReadLines("/proc/cpuinfo"))
        {
            if (line.StartsWith("model name", StringComparison.Ordinal))
            {
                return line[(line.IndexOf(':', StringComparison.Ordinal) + 1)..].Trim();
            }
        }

        return "unknown";
    }

    /// <summary>The 1, 5 and 15 minute load averages (/proc/loadavg), to record how busy the host was.</summary>
    internal static JsonArray LoadAverage() =>
        new([.. File.ReadAllText("/proc/loadavg").Split(' ').Take(3).Select(x => (JsonNode)double.Parse(x, CultureInfo.InvariantCulture))]);

    internal static long MemAvailableMb()
    {
        foreach (var line in File.ReadLines("/proc/meminfo"))
        {
            if (line.StartsWith("MemAvailable:", StringComparison.Ordinal))
            {
                return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) / 1024;
            }
        }

        return 0;
    }

    private static long StealJiffies()
    {
        var parts = File.ReadLines("/proc/stat").First().Split(' ', StringSplitOptions.RemoveEmptyEntries);
        return parts.Length > 8 ? long.Parse(parts[8], CultureInfo.InvariantCulture) : 0;
    }

    /// <summary>Measures wall, process CPU and host steal over a block.</summary>
    internal sealed class CpuAccount
    {
        private readonly Stopwatch wall = Stopwatch.StartNew();
        private readonly TimeSpan user0 = Process.GetCurrentProcess().UserProcessorTime;
        private readonly TimeSpan sys0 = Process.GetCurrentProcess().PrivilegedProcessorTime;
        private readonly long steal0 = StealJiffies();

        internal Dictionary<string, object> Result()
        {
            var p = Process.GetCurrentProcess();
            var w = wall.Elapsed.TotalSeconds;
            var user = (p.UserProcessorTime - user0).TotalSeconds;
            var sys = (p.PrivilegedProcessorTime - sys0).TotalSeconds;
            return new()
            {
                ["wall_s"] = w,
                ["cpu_user_s"] = user,
                ["cpu_sys_s"] = sys,
                ["avg_busy_threads"] = w > 0 ? (user + sys) / w : 0,
                ["host_steal_s"] = (StealJiffies() - steal0) / 100.0,
            };
        }
    }
}
