using System.Runtime.InteropServices;
using System.Security.Cryptography;
using TorchSharp;
using Distill.IO;

namespace Distill.Runtime;

/// <summary>
/// Makes TorchSharp's native libraries load on Linux distributions whose libstdc++ predates GCC 13 (Debian 12,
/// Ubuntu 22.04): detects a missing GLIBCXX version need of <c>libLibTorchSharp.so</c>, writes a copy with that need
/// marked weak into a per-content-hash cache folder, and preloads libc10, libtorch_cpu, libtorch and the patched copy
/// with <see cref="NativeLibrary.Load(string)"/> so that TorchSharp's own loader finds them already mapped (by soname).
/// </summary>
internal static class TorchNativeLoader
{
    /// <summary>Environment variable that turns the fix off (<c>1</c> or <c>true</c>).</summary>
    internal const string DisableVariable = "DISTILL_DISABLE_NATIVE_FIX";

    /// <summary>Environment variable that overrides the cache folder (default <c>$XDG_CACHE_HOME/distill</c> or <c>~/.cache/distill</c>).</summary>
    internal const string CacheVariable = "DISTILL_CACHE_DIR";

    internal const string LibTorchSharpFile = "libLibTorchSharp.so";
    private const string LibStdCxxSoname = "libstdc++.so.6";

    /// <summary>libtorch's libraries in dependency order; those absent from a package (e.g. CUDA ones on CPU) are skipped.</summary>
    private static readonly string[] Dependencies = ["libc10.so", "libc10_cuda.so", "libtorch_cpu.so", "libtorch_cuda.so", "libtorch.so"];

    private static readonly Lock Gate = new();
    private static NativeRuntimeReport? report;
    private static CpuThreadingReport? threading;

    /// <summary>Gets the CPU threading chosen by the first <see cref="Ensure"/>.</summary>
    internal static CpuThreadingReport Threading
    {
        get
        {
            Ensure();
            return threading!;
        }
    }

    /// <summary>Runs the detection and fix once per process and returns what happened.</summary>
    internal static NativeRuntimeReport Ensure()
    {
        lock (Gate)
        {
            // Threading first: libgomp reads OMP_WAIT_POLICY / OMP_NUM_THREADS only when libtorch loads it.
            threading ??= CpuThreading.Apply(Environment.GetEnvironmentVariable, CpuThreading.SetNative, CpuThreading.CountPhysicalCores(), Environment.ProcessorCount);
            return report ??= Run(Environment.GetEnvironmentVariable);
        }
    }

    /// <summary>Decides and applies the fix; <paramref name="getEnvironmentVariable"/> is injectable for tests.</summary>
    internal static NativeRuntimeReport Run(Func<string, string?> getEnvironmentVariable)
    {
        var actions = new List<string>();
        if (!OperatingSystem.IsLinux())
        {
            return new(NativeRuntimeOutcome.NotNeeded, $"Not Linux ({RuntimeInformation.OSDescription}); nothing to fix.", actions);
        }

        string? disable = getEnvironmentVariable(DisableVariable);
        if (disable is "1" || string.Equals(disable, "true", StringComparison.OrdinalIgnoreCase))
        {
            return new(NativeRuntimeOutcome.Disabled, $"{DisableVariable}={disable}: native fix turned off.", actions);
        }

        try
        {
            return Fix(actions);
        }
        catch (Exception ex)
        {
            // Never let the fix itself break start-up: report, and let TorchSharp's own loader have its say.
            return new(NativeRuntimeOutcome.Failed, $"Native fix failed: {ex.Message}", actions);
        }
    }

    private static NativeRuntimeReport Fix(List<string> actions)
    {
        var dirs = SearchDirectories();
        string? torchSharpLib = FindFile(dirs, LibTorchSharpFile);
        if (torchSharpLib is null)
        {
            return new(NativeRuntimeOutcome.NotFound,
                $"{LibTorchSharpFile} not found in: {string.Join(", ", dirs)}. Reference TorchSharp-cpu (or a CUDA package) in the application.", actions);
        }

        actions.Add($"found {torchSharpLib}");
        if (IsMapped(LibTorchSharpFile))
        {
            return new(NativeRuntimeOutcome.AlreadyLoaded, $"{LibTorchSharpFile} is already loaded in this process; nothing done.", actions);
        }

        string? stdcxx = LocateLoadedLibrary(LibStdCxxSoname);
        if (stdcxx is null)
        {
            return new(NativeRuntimeOutcome.NotNeeded, $"{LibStdCxxSoname} could not be located; leaving the load to TorchSharp.", actions);
        }

        actions.Add($"system libstdc++ is {stdcxx}");
        var image = ElfImage.Parse(File.ReadAllBytes(torchSharpLib), torchSharpLib);
        var provided = ElfImage.Parse(File.ReadAllBytes(stdcxx), stdcxx).ReadVersionDefinitions();
        var missing = ElfVersionNeedPatcher.FindMissing(image, LibStdCxxSoname, provided);
        if (missing.Count == 0)
        {
            return new(NativeRuntimeOutcome.NotNeeded, $"{stdcxx} provides every version {LibTorchSharpFile} needs; no fix needed.", actions);
        }

        string missingList = string.Join(", ", missing.Select(m => m.Version));
        actions.Add($"system libstdc++ lacks {missingList}");
        var unsafeNeeds = ElfVersionNeedPatcher.FindUnsafe(image, missing);
        if (unsafeNeeds.Count > 0)
        {
            string detail = string.Join("; ", unsafeNeeds.Select(kv => $"{kv.Key} is used by {string.Join(", ", kv.Value.Take(5))}"));
            return new(NativeRuntimeOutcome.Failed,
                $"{LibTorchSharpFile} needs {missingList} from {LibStdCxxSoname} for real symbols ({detail}); install a newer libstdc++ (GCC 13+).", actions);
        }

        string patched = WritePatchedCopy(image, missing, actions);
        string nativeDir = Path.GetDirectoryName(FindFile(dirs, "libtorch.so") ?? torchSharpLib)!;
        foreach (string dependency in Dependencies)
        {
            string candidate = Path.Combine(nativeDir, dependency);
            if (File.Exists(candidate))
            {
                NativeLibrary.Load(candidate);
                actions.Add($"preloaded {candidate}");
            }
        }

        NativeLibrary.Load(patched);
        actions.Add($"preloaded {patched}");
        return new(NativeRuntimeOutcome.Patched,
            $"System libstdc++ lacks {missingList} (used only by marker symbols); loaded a copy of {LibTorchSharpFile} with the need marked weak: {patched}.",
            actions);
    }

    private static string WritePatchedCopy(ElfImage image, IReadOnlyList<ElfVersionNeed> missing, List<string> actions)
    {
        string hash = Convert.ToHexStringLower(SHA256.HashData(image.Data))[..16];
        string folder = Path.Combine(CacheRoot(), "native", $"libtorchsharp-{hash}");
        string target = Path.Combine(folder, LibTorchSharpFile);
        if (File.Exists(target) && IsExpectedPatch(target, image, missing))
        {
            actions.Add($"reused cached patched copy {target}");
            return target;
        }

        // Atomic (and creates the folder): a concurrent process sees the old file or the new one, never half of one.
        AtomicFile.WriteAllBytes(target, ElfVersionNeedPatcher.MarkWeak(image, missing));
        actions.Add($"wrote patched copy {target} (marked weak: {string.Join(", ", missing.Select(m => m.Version))})");
        return target;
    }

    private static bool IsExpectedPatch(string path, ElfImage original, IReadOnlyList<ElfVersionNeed> missing)
    {
        try
        {
            byte[] expected = ElfVersionNeedPatcher.MarkWeak(original, missing);
            byte[] actual = File.ReadAllBytes(path);
            return actual.AsSpan().SequenceEqual(expected);
        }
        catch (IOException)
        {
            return false;
        }
    }

    /// <summary>The cache root: <c>DISTILL_CACHE_DIR</c>, else <c>$XDG_CACHE_HOME/distill</c>, else <c>~/.cache/distill</c>, else the temp folder.</summary>
    internal static string CacheRoot()
    {
        string? overrideDir = Environment.GetEnvironmentVariable(CacheVariable);
        if (!string.IsNullOrWhiteSpace(overrideDir))
        {
            return overrideDir;
        }

        string? xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
        if (!string.IsNullOrWhiteSpace(xdg))
        {
            return Path.Combine(xdg, "distill");
        }

        string home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        return string.IsNullOrEmpty(home)
            ? Path.Combine(Path.GetTempPath(), $"distill-{Environment.UserName}")
            : Path.Combine(home, ".cache", "distill");
    }

    /// <summary>Where .NET and TorchSharp look for native libraries, in probing order.</summary>
    internal static IReadOnlyList<string> SearchDirectories()
    {
        var dirs = new List<string>();
        if (AppContext.GetData("NATIVE_DLL_SEARCH_DIRECTORIES") is string searchDirs)
        {
            dirs.AddRange(searchDirs.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        }

        string baseDir = AppContext.BaseDirectory;
        string rid = RuntimeInformation.ProcessArchitecture == Architecture.Arm64 ? "linux-arm64" : "linux-x64";
        dirs.Add(baseDir);
        dirs.Add(Path.Combine(baseDir, "runtimes", rid, "native"));
        string? torchDir = Path.GetDirectoryName(typeof(torch).Assembly.Location);
        if (!string.IsNullOrEmpty(torchDir))
        {
            dirs.Add(torchDir);
            dirs.Add(Path.Combine(torchDir, "runtimes", rid, "native"));
        }

        return dirs.Select(d => Path.GetFullPath(d)).Distinct(StringComparer.Ordinal).ToList();
    }

    private static string? FindFile(IEnumerable<string> dirs, string fileName) =>
        dirs.Select(d => Path.Combine(d, fileName)).FirstOrDefault(File.Exists);

    private static bool IsMapped(string fileName) => MappedPaths().Any(p => Path.GetFileName(p) == fileName);

    private static string? LocateLoadedLibrary(string soname)
    {
        string? path = MappedPaths().FirstOrDefault(p => Path.GetFileName(p) == soname || Path.GetFileName(p).StartsWith(soname + ".", StringComparison.Ordinal));
        if (path is null && NativeLibrary.TryLoad(soname, out _))
        {
            path = MappedPaths().FirstOrDefault(p => Path.GetFileName(p).StartsWith(soname, StringComparison.Ordinal));
        }

        return path;
    }

    /// <summary>Paths of the files mapped into this process (<c>/proc/self/maps</c>).</summary>
    private static IEnumerable<string> MappedPaths()
    {
        const string Maps = "/proc/self/maps";
        if (!File.Exists(Maps))
        {
            return [];
        }

        return File.ReadLines(Maps)
            .Select(line => line.IndexOf('/', StringComparison.Ordinal) is int i and >= 0 ? line[i..] : null)
            .Where(p => p is not null)
            .Select(p => p!)
            .Distinct(StringComparer.Ordinal)
            .ToList();
    }
}
