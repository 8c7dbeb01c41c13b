using System.Buffers.Binary;
using System.Text;

namespace Distill.Runtime;

/// <summary>
/// A read-only view of a 64-bit little-endian ELF shared object, parsed from its section headers: just enough of the
/// format (sections, dynamic symbols, GNU symbol versioning) to find and patch version needs.
/// </summary>
/// <remarks>
/// Every offset read from the file is bounds-checked; a malformed file gives an <see cref="InvalidDataException"/>
/// naming the file and the structure that is out of range. Layouts follow the System V gABI and the LSB
/// "Symbol Versioning" chapter (Elf64_Ehdr, Elf64_Shdr, Elf64_Sym, Elf64_Verneed/Vernaux, Elf64_Verdef/Verdaux).
/// </remarks>
internal sealed class ElfImage
{
    internal const uint ShtDynsym = 11;
    internal const uint ShtGnuVerdef = 0x6ffffffd;
    internal const uint ShtGnuVerneed = 0x6ffffffe;
    internal const uint ShtGnuVersym = 0x6fffffff;

    /// <summary>VER_FLG_WEAK: a version need whose absence is not an error for the dynamic loader.</summary>
    internal const ushort VerFlagWeak = 0x2;

    private readonly byte[] data;
    private readonly string name;

    private ElfImage(byte[] data, string name, IReadOnlyList<ElfSection> sections)
    {
        this.data = data;
        this.name = name;
        Sections = sections;
    }

    /// <summary>Gets the raw bytes of the file (the patcher edits a copy of them).</summary>
    internal byte[] Data => data;

    /// <summary>Gets the section headers in file order.</summary>
    internal IReadOnlyList<ElfSection> Sections { get; }

    /// <summary>Parses the ELF image held in <paramref name="bytes"/>; <paramref name="fileName"/> is used in errors.</summary>
    internal static ElfImage Parse(byte[] bytes, string fileName)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        if (bytes.Length < 64 || bytes[0] != 0x7f || bytes[1] != (byte)'E' || bytes[2] != (byte)'L' || bytes[3] != (byte)'F')
        {
            throw new InvalidDataException($"'{fileName}' is not an ELF file (bad magic or shorter than an ELF header).");
        }

        if (bytes[4] != 2 || bytes[5] != 1)
        {
            throw new InvalidDataException(
                $"'{fileName}' is ELF class {bytes[4]}, data encoding {bytes[5]}; only 64-bit little-endian ELF (class 2, encoding 1) is supported.");
        }

        var span = bytes.AsSpan();
        ulong shoff = BinaryPrimitives.ReadUInt64LittleEndian(span[40..]);
        ushort shentsize = BinaryPrimitives.ReadUInt16LittleEndian(span[58..]);
        uint shnum = BinaryPrimitives.ReadUInt16LittleEndian(span[60..]);
        uint shstrndx = BinaryPrimitives.ReadUInt16LittleEndian(span[62..]);
        if (shoff == 0)
        {
            throw new InvalidDataException($"'{fileName}' has no section header table.");
        }

        if (shentsize != 64)
        {
            throw new InvalidDataException($"'{fileName}': section header entry size is {shentsize}, expected 64.");
        }

        CheckRange(bytes.Length, shoff, 64, fileName, "section header 0");
        if (shnum == 0)
        {
            // Extended numbering: the real count lives in section 0's sh_size.
            shnum = checked((uint)BinaryPrimitives.ReadUInt64LittleEndian(span[(int)(shoff + 32)..]));
        }

        if (shstrndx == 0xffff)
        {
            shstrndx = BinaryPrimitives.ReadUInt32LittleEndian(span[(int)(shoff + 40)..]);
        }

        CheckRange(bytes.Length, shoff, (ulong)shnum * 64, fileName, "section header table");
        var raw = new (uint NameOffset, uint Type, ulong Offset, ulong Size, uint Link, uint Info, ulong EntSize)[shnum];
        for (int i = 0; i < shnum; i++)
        {
            var h = span.Slice((int)(shoff + ((ulong)i * 64)), 64);
            raw[i] = (
                BinaryPrimitives.ReadUInt32LittleEndian(h),
                BinaryPrimitives.ReadUInt32LittleEndian(h[4..]),
                BinaryPrimitives.ReadUInt64LittleEndian(h[24..]),
                BinaryPrimitives.ReadUInt64LittleEndian(h[32..]),
                BinaryPrimitives.ReadUInt32LittleEndian(h[40..]),
                BinaryPrimitives.ReadUInt32LittleEndian(h[44..]),
                BinaryPrimitives.ReadUInt64LittleEndian(h[56..]));
            const uint ShtNobits = 8;
            if (raw[i].Type != ShtNobits && raw[i].Type != 0)
            {
                CheckRange(bytes.Length, raw[i].Offset, raw[i].Size, fileName, $"section {i}");
            }
        }

        if (shstrndx >= shnum)
        {
            throw new InvalidDataException($"'{fileName}': section name table index {shstrndx} is out of range ({shnum} sections).");
        }

        var sections = new ElfSection[shnum];
        var shstr = raw[shstrndx];
        for (int i = 0; i < shnum; i++)
        {
            string sectionName = ReadString(bytes, shstr.Offset, shstr.Size, raw[i].NameOffset, fileName, "section name table");
            sections[i] = new ElfSection(i, sectionName, raw[i].Type, raw[i].Offset, raw[i].Size, raw[i].Link, raw[i].Info, raw[i].EntSize);
        }

        return new ElfImage(bytes, fileName, sections);
    }

    /// <summary>Reads all version needs (<c>.gnu.version_r</c>), with the byte offset of each auxiliary entry.</summary>
    internal IReadOnlyList<ElfVersionNeed> ReadVersionNeeds()
    {
        var result = new List<ElfVersionNeed>();
        var section = Sections.FirstOrDefault(s => s.Type == ShtGnuVerneed);
        if (section is null)
        {
            return result;
        }

        var strtab = LinkedStringTable(section);
        var span = data.AsSpan();
        ulong entry = section.Offset;
        for (uint n = 0; n < section.Info; n++)
        {
            CheckRange(section.Offset + section.Size, entry, 16, name, ".gnu.version_r entry");
            ushort count = BinaryPrimitives.ReadUInt16LittleEndian(span[(int)(entry + 2)..]);
            uint fileOffset = BinaryPrimitives.ReadUInt32LittleEndian(span[(int)(entry + 4)..]);
            uint auxOffset = BinaryPrimitives.ReadUInt32LittleEndian(span[(int)(entry + 8)..]);
            uint next = BinaryPrimitives.ReadUInt32LittleEndian(span[(int)(entry + 12)..]);
            string file = ReadString(data, strtab.Offset, strtab.Size, fileOffset, name, strtab.Name);
            ulong aux = entry + auxOffset;
            for (int a = 0; a < count; a++)
            {
                CheckRange(section.Offset + section.Size, aux, 16, name, ".gnu.version_r auxiliary entry");
                ushort flags = BinaryPrimitives.ReadUInt16LittleEndian(span[(int)(aux + 4)..]);
                ushort other = BinaryPrimitives.ReadUInt16LittleEndian(span[(int)(aux + 6)..]);
                uint nameOffset = BinaryPrimitives.ReadUInt32LittleEndian(span[(int)(aux + 8)..]);
                uint auxNext = BinaryPrimitives.ReadUInt32LittleEndian(span[(int)(aux + 12)..]);
                string version = ReadString(data, strtab.Offset, strtab.Size, nameOffset, name, strtab.Name);
                result.Add(new ElfVersionNeed(file, version, flags, other, checked((long)aux + 4)));
                if (auxNext == 0)
                {
                    break;
                }

                aux += auxNext;
            }

            if (next == 0)
            {
                break;
            }

            entry += next;
        }

        return result;
    }

    /// <summary>Reads the names of all versions this object defines (<c>.gnu.version_d</c>).</summary>
    internal IReadOnlySet<string> ReadVersionDefinitions()
    {
        var result = new HashSet<string>(StringComparer.Ordinal);
        var section = Sections.FirstOrDefault(s => s.Type == ShtGnuVerdef);
        if (section is null)
        {
            return result;
        }

        var strtab = LinkedStringTable(section);
        var span = data.AsSpan();
        ulong entry = section.Offset;
        for (uint n = 0; n < section.Info; n++)
        {
            CheckRange(section.Offset + section.Size, entry, 20, name, ".gnu.version_d entry");
            ushort count = BinaryPrimitives.ReadUInt16LittleEndian(span[(int)(entry + 6)..]);
            uint auxOffset = BinaryPrimitives.ReadUInt32LittleEndian(span[(int)(entry + 12)..]);
            uint next = BinaryPrimitives.ReadUInt32LittleEndian(span[(int)(entry + 16)..]);
            if (count > 0)
            {
                // The first Verdaux names the version itself; the rest name its parents.
                ulong aux = entry + auxOffset;
                CheckRange(section.Offset + section.Size, aux, 8, name, ".gnu.version_d auxiliary entry");
                uint nameOffset = BinaryPrimitives.ReadUInt32LittleEndian(span[(int)aux..]);
                result.Add(ReadString(data, strtab.Offset, strtab.Size, nameOffset, name, strtab.Name));
            }

            if (next == 0)
            {
                break;
            }

            entry += next;
        }

        return result;
    }

    /// <summary>Lists the dynamic symbols whose version index (<c>.gnu.version</c>, hidden bit masked) is <paramref name="versionIndex"/>.</summary>
    internal IReadOnlyList<string> SymbolsUsingVersion(ushort versionIndex)
    {
        var result = new List<string>();
        var dynsym = Sections.FirstOrDefault(s => s.Type == ShtDynsym);
        var versym = Sections.FirstOrDefault(s => s.Type == ShtGnuVersym);
        if (dynsym is null || versym is null)
        {
            return result;
        }

        var strtab = LinkedStringTable(dynsym);
        ulong entSize = dynsym.EntSize == 0 ? 24 : dynsym.EntSize;
        ulong count = dynsym.Size / entSize;
        if (versym.Size / 2 < count)
        {
            throw new InvalidDataException($"'{name}': .gnu.version has {versym.Size / 2} entries but .dynsym has {count}.");
        }

        var span = data.AsSpan();
        for (ulong i = 0; i < count; i++)
        {
            ushort v = (ushort)(BinaryPrimitives.ReadUInt16LittleEndian(span[(int)(versym.Offset + (i * 2))..]) & 0x7fff);
            if (v != versionIndex)
            {
                continue;
            }

            uint nameOffset = BinaryPrimitives.ReadUInt32LittleEndian(span[(int)(dynsym.Offset + (i * entSize))..]);
            result.Add(ReadString(data, strtab.Offset, strtab.Size, nameOffset, name, strtab.Name));
        }

        return result;
    }

    private ElfSection LinkedStringTable(ElfSection section)
    {
        if (section.Link >= Sections.Count)
        {
            throw new InvalidDataException($"'{name}': section '{section.Name}' links to string table {section.Link}, which does not exist.");
        }

        return Sections[(int)section.Link];
    }

    private static string ReadString(byte[] bytes, ulong tableOffset, ulong tableSize, uint offset, string fileName, string table)
    {
        if (offset >= tableSize)
        {
            throw new InvalidDataException($"'{fileName}': string offset {offset} is outside {table} (size {tableSize}).");
        }

        int start = checked((int)(tableOffset + offset));
        int end = Array.IndexOf(bytes, (byte)0, start, checked((int)(tableSize - offset)));
        if (end < 0)
        {
            throw new InvalidDataException($"'{fileName}': unterminated string at offset {offset} in {table}.");
        }

        return Encoding.UTF8.GetString(bytes, start, end - start);
    }

    private static void CheckRange(long fileLength, ulong offset, ulong size, string fileName, string what) =>
        CheckRange((ulong)fileLength, offset, size, fileName, what);

    private static void CheckRange(ulong limit, ulong offset, ulong size, string fileName, string what)
    {
        if (offset > limit || size > limit - offset)
        {
            throw new InvalidDataException($"'{fileName}': {what} (offset {offset}, size {size}) lies outside its bounds ({limit} bytes).");
        }
    }
}

/// <summary>One ELF section header.</summary>
internal sealed record ElfSection(int Index, string Name, uint Type, ulong Offset, ulong Size, uint Link, uint Info, ulong EntSize);

/// <summary>One auxiliary version need: <paramref name="Version"/> required from <paramref name="File"/>.</summary>
/// <param name="File">The needed library's soname, e.g. <c>libstdc++.so.6</c>.</param>
/// <param name="Version">The version name, e.g. <c>GLIBCXX_3.4.32</c>.</param>
/// <param name="Flags">vna_flags; bit 0x2 is VER_FLG_WEAK.</param>
/// <param name="Index">vna_other: the version index symbols use in <c>.gnu.version</c>.</param>
/// <param name="FlagsFileOffset">The byte offset of vna_flags in the file.</param>
internal sealed record ElfVersionNeed(string File, string Version, ushort Flags, ushort Index, long FlagsFileOffset)
{
    /// <summary>Gets a value indicating whether the need is weak (absence tolerated by the loader).</summary>
    public bool IsWeak => (Flags & ElfImage.VerFlagWeak) != 0;
}
