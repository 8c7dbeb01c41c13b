using System.Buffers.Binary;

namespace Distill.Runtime;

/// <summary>
/// Marks selected symbol-version needs of an ELF shared object as weak (VER_FLG_WEAK in <c>vna_flags</c>), so that the
/// dynamic loader accepts a system library that lacks those versions.
/// </summary>
/// <remarks>
/// TorchSharp 0.107's <c>libLibTorchSharp.so</c> is linked against GCC 13's libstdc++ and therefore declares a need for
/// <c>GLIBCXX_3.4.32</c>, used only by the marker symbol <c>_ZSt21ios_base_library_initv</c>, which is never called.
/// On libstdc++ from GCC 12 (Debian 12, Ubuntu 22.04: GLIBCXX up to 3.4.30) the loader rejects the library. A weak need
/// is only reported, not enforced (glibc <c>_dl_check_map_versions</c>). The patch changes exactly the two-byte
/// <c>vna_flags</c> field of each selected entry; nothing else in the file moves.
/// </remarks>
internal static class ElfVersionNeedPatcher
{
    /// <summary>Symbols known to be link-time markers only; a missing version used by nothing else is safe to weaken.</summary>
    internal static readonly IReadOnlySet<string> MarkerSymbols = new HashSet<string>(StringComparer.Ordinal)
    {
        "_ZSt21ios_base_library_initv",
    };

    /// <summary>
    /// Finds the version needs of <paramref name="image"/> on library <paramref name="providerSoname"/> that
    /// <paramref name="providedVersions"/> does not define and that are not already weak.
    /// </summary>
    internal static IReadOnlyList<ElfVersionNeed> FindMissing(ElfImage image, string providerSoname, IReadOnlySet<string> providedVersions) =>
        image.ReadVersionNeeds()
            .Where(n => n.File == providerSoname && !n.IsWeak && !providedVersions.Contains(n.Version))
            .ToList();

    /// <summary>
    /// Decides whether each missing need can be weakened safely: every dynamic symbol bound to that version must be a
    /// known marker symbol. Returns the offending symbols per version for those that cannot.
    /// </summary>
    internal static IReadOnlyDictionary<string, IReadOnlyList<string>> FindUnsafe(ElfImage image, IEnumerable<ElfVersionNeed> needs)
    {
        var result = new Dictionary<string, IReadOnlyList<string>>(StringComparer.Ordinal);
        foreach (var need in needs)
        {
            var offenders = image.SymbolsUsingVersion(need.Index).Where(s => !MarkerSymbols.Contains(s)).ToList();
            if (offenders.Count > 0)
            {
                result[need.Version] = offenders;
            }
        }

        return result;
    }

    /// <summary>Returns a copy of the image bytes with VER_FLG_WEAK set on each of <paramref name="needs"/>.</summary>
    internal static byte[] MarkWeak(ElfImage image, IEnumerable<ElfVersionNeed> needs)
    {
        var copy = (byte[])image.Data.Clone();
        foreach (var need in needs)
        {
            var field = copy.AsSpan((int)need.FlagsFileOffset, 2);
            ushort flags = BinaryPrimitives.ReadUInt16LittleEndian(field);
            BinaryPrimitives.WriteUInt16LittleEndian(field, (ushort)(flags | ElfImage.VerFlagWeak));
        }

        return copy;
    }
}
