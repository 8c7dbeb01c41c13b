using Distill.Runtime;

namespace Distill.Core.Tests.Runtime;

/// <summary>The ELF patcher on a real copy of the libLibTorchSharp.so that the TorchSharp package ships.</summary>
public class ElfVersionNeedPatcherTests
{
    private const string Marker = "GLIBCXX_3.4.32";

    private static (string Path, ElfImage Image) ShippedLibrary()
    {
        string path = TorchNativeLoader.SearchDirectories()
            .Select(d => Path.Combine(d, TorchNativeLoader.LibTorchSharpFile))
            .First(File.Exists);
        return (path, ElfImage.Parse(File.ReadAllBytes(path), path));
    }

    /// <summary>Every version the library needs from libstdc++ except the GCC 13 marker: what GCC 12's libstdc++ offers.</summary>
    private static HashSet<string> Gcc12Versions(ElfImage image) =>
        image.ReadVersionNeeds().Where(n => n.File == "libstdc++.so.6" && n.Version != Marker).Select(n => n.Version).ToHashSet();

    [Fact]
    public void ReadVersionNeeds_ShippedLibrary_NeedsGlibcxx3432FromLibstdcxx()
    {
        var (_, image) = ShippedLibrary();
        var need = Assert.Single(image.ReadVersionNeeds(), n => n.Version == Marker);
        Assert.Equal("libstdc++.so.6", need.File);
        Assert.False(need.IsWeak);
    }

    [Fact]
    public void FindMissing_Gcc12Libstdcxx_ReportsOnlyTheMarkerVersion()
    {
        var (_, image) = ShippedLibrary();
        var missing = ElfVersionNeedPatcher.FindMissing(image, "libstdc++.so.6", Gcc12Versions(image));
        Assert.Equal([Marker], missing.Select(m => m.Version));
    }

    [Fact]
    public void FindMissing_AllVersionsProvided_ReportsNothing()
    {
        var (_, image) = ShippedLibrary();
        var all = image.ReadVersionNeeds().Select(n => n.Version).ToHashSet();
        Assert.Empty(ElfVersionNeedPatcher.FindMissing(image, "libstdc++.so.6", all));
    }

    [Fact]
    public void FindUnsafe_MarkerVersion_IsSafeBecauseOnlyTheMarkerSymbolUsesIt()
    {
        var (_, image) = ShippedLibrary();
        var marker = image.ReadVersionNeeds().Single(n => n.Version == Marker);
        Assert.Equal(["_ZSt21ios_base_library_initv"], image.SymbolsUsingVersion(marker.Index));
        Assert.Empty(ElfVersionNeedPatcher.FindUnsafe(image, [marker]));
    }

    [Fact]
    public void FindUnsafe_VersionUsedByRealSymbols_IsReportedWithTheSymbols()
    {
        var (_, image) = ShippedLibrary();
        var real = image.ReadVersionNeeds().First(n => n.Version == "GLIBCXX_3.4.30");
        var unsafeNeeds = ElfVersionNeedPatcher.FindUnsafe(image, [real]);
        Assert.True(unsafeNeeds.ContainsKey("GLIBCXX_3.4.30"));
        Assert.NotEmpty(unsafeNeeds["GLIBCXX_3.4.30"]);
    }

    [Fact]
    public void MarkWeak_MarkerNeed_ChangesOnlyItsFlagsAndMakesItWeak()
    {
        var (path, image) = ShippedLibrary();
        var missing = ElfVersionNeedPatcher.FindMissing(image, "libstdc++.so.6", Gcc12Versions(image));
        byte[] patched = ElfVersionNeedPatcher.MarkWeak(image, missing);

        // Same length; exactly the vna_flags byte of the marker entry differs (0x0000 -> 0x0002, little-endian).
        Assert.Equal(image.Data.Length, patched.Length);
        var diffs = Enumerable.Range(0, patched.Length).Where(i => patched[i] != image.Data[i]).ToList();
        long flagsOffset = missing.Single().FlagsFileOffset;
        Assert.Equal([(int)flagsOffset], diffs);
        Assert.Equal(ElfImage.VerFlagWeak, patched[flagsOffset]);

        var reparsed = ElfImage.Parse(patched, path + " (patched)");
        var before = image.ReadVersionNeeds();
        var after = reparsed.ReadVersionNeeds();
        Assert.Equal(before.Count, after.Count);
        for (int i = 0; i < before.Count; i++)
        {
            Assert.Equal(before[i].Version, after[i].Version);
            Assert.Equal(before[i].Version == Marker, after[i].IsWeak);
        }

        // A weak need is no longer "missing": the patch is idempotent.
        Assert.Empty(ElfVersionNeedPatcher.FindMissing(reparsed, "libstdc++.so.6", Gcc12Versions(image)));
        Assert.Equal(image.Sections.Select(s => (s.Name, s.Offset, s.Size)), reparsed.Sections.Select(s => (s.Name, s.Offset, s.Size)));
    }

    [Fact]
    public void Parse_NotAnElfFile_ThrowsNamingTheFile()
    {
        var ex = Assert.Throws<InvalidDataException>(() => ElfImage.Parse(new byte[100], "bogus.so"));
        Assert.Contains("bogus.so", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_TruncatedLibrary_ThrowsInvalidData()
    {
        var (_, image) = ShippedLibrary();
        byte[] truncated = image.Data.AsSpan(0, image.Data.Length / 2).ToArray();
        var ex = Assert.Throws<InvalidDataException>(() => ElfImage.Parse(truncated, "half.so"));
        Assert.Contains("half.so", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_32BitElf_ThrowsUnsupported()
    {
        var (_, image) = ShippedLibrary();
        byte[] copy = (byte[])image.Data.Clone();
        copy[4] = 1; // ELFCLASS32
        var ex = Assert.Throws<InvalidDataException>(() => ElfImage.Parse(copy, "x.so"));
        Assert.Contains("64-bit", ex.Message, StringComparison.Ordinal);
    }
}
