using System.Text;

namespace Distill.Data;

/// <summary>
/// GPT-2's byte-to-unicode table (<c>bytes_to_unicode</c> in the original encoder): every byte maps to one printable
/// character, so byte-level BPE vocabularies are stored as strings (space → <c>Ġ</c>, newline → <c>Ċ</c>).
/// </summary>
/// <remarks>
/// Printable bytes <c>!</c>..<c>~</c>, <c>¡</c>..<c>¬</c> and <c>®</c>..<c>ÿ</c> map to themselves; the other 68 bytes
/// map, in increasing byte order, to U+0100, U+0101, ... .
/// </remarks>
internal static class ByteLevelAlphabet
{
    private static readonly char[] ByteToChar = BuildTable();
    private static readonly Dictionary<char, byte> CharToByte = BuildInverse();

    /// <summary>Gets the character that stands for <paramref name="value"/>.</summary>
    public static char Encode(byte value) => ByteToChar[value];

    /// <summary>Encodes UTF-8 bytes as a byte-level string.</summary>
    public static string Encode(ReadOnlySpan<byte> bytes)
    {
        var chars = new char[bytes.Length];
        for (var i = 0; i < bytes.Length; i++)
        {
            chars[i] = ByteToChar[bytes[i]];
        }

        return new string(chars);
    }

    /// <summary>Encodes a text's UTF-8 bytes as a byte-level string.</summary>
    public static string EncodeText(ReadOnlySpan<char> text)
    {
        var bytes = new byte[Encoding.UTF8.GetByteCount(text)];
        Encoding.UTF8.GetBytes(text, bytes);
        return Encode(bytes);
    }

    /// <summary>Appends the bytes a byte-level token string stands for; returns false when a character is not in the alphabet.</summary>
    public static bool TryDecode(string token, List<byte> output)
    {
        foreach (var c in token)
        {
            if (!CharToByte.TryGetValue(c, out var b))
            {
                return false;
            }

            output.Add(b);
        }

        return true;
    }

    private static char[] BuildTable()
    {
        var table = new char[256];
        var assigned = new bool[256];
        for (var b = 0; b < 256; b++)
        {
            if (b is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF)
            {
                table[b] = (char)b;
                assigned[b] = true;
            }
        }

        var next = 0;
        for (var b = 0; b < 256; b++)
        {
            if (!assigned[b])
            {
                table[b] = (char)(256 + next);
                next++;
            }
        }

        return table;
    }

    private static Dictionary<char, byte> BuildInverse()
    {
        var inverse = new Dictionary<char, byte>(256);
        for (var b = 0; b < 256; b++)
        {
            inverse[ByteToChar[b]] = (byte)b;
        }

        return inverse;
    }
}
