using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace Distill.Data;

/// <summary>The hashes a teacher cache records: dataset, tokenizer and per-example keys (SHA-256, lower-case hex).</summary>
public static class TeacherCacheHashes
{
    /// <summary>Hashes a tokenizer's vocabulary: every id's token string, in id order, and the special ids.</summary>
    /// <param name="tokenizer">The tokenizer.</param>
    /// <returns>64 hex characters.</returns>
    public static string Tokenizer(HfTokenizer tokenizer)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        Span<byte> n = stackalloc byte[4];
        for (var id = 0; id < tokenizer.VocabSize; id++)
        {
            var bytes = Encoding.UTF8.GetBytes(tokenizer.ConvertIdToToken(id));
            BinaryPrimitives.WriteInt32LittleEndian(n, bytes.Length);
            sha.AppendData(n);
            sha.AppendData(bytes);
        }

        foreach (var special in new[] { tokenizer.BosTokenId, tokenizer.EosTokenId, tokenizer.PadTokenId, tokenizer.UnkTokenId })
        {
            BinaryPrimitives.WriteInt32LittleEndian(n, special ?? -1);
            sha.AppendData(n);
        }

        return Convert.ToHexStringLower(sha.GetHashAndReset());
    }

    /// <summary>Hashes the examples of a dataset, in order (row count, then each example's key).</summary>
    /// <param name="examples">The rows.</param>
    /// <returns>64 hex characters.</returns>
    public static string Dataset(IReadOnlyList<TeacherCacheExample> examples)
    {
        ArgumentNullException.ThrowIfNull(examples);
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        Span<byte> buffer = stackalloc byte[16];
        BinaryPrimitives.WriteInt64LittleEndian(buffer, examples.Count);
        sha.AppendData(buffer[..8]);
        foreach (var e in examples)
        {
            var (hi, lo) = Key(e.InputIds, e.ScoredPositions);
            BinaryPrimitives.WriteInt64LittleEndian(buffer, hi);
            BinaryPrimitives.WriteInt64LittleEndian(buffer[8..], lo);
            sha.AppendData(buffer);
        }

        return Convert.ToHexStringLower(sha.GetHashAndReset());
    }

    /// <summary>The 128-bit lookup key of one example: the first 16 bytes of SHA-256 over its ids and scored positions.</summary>
    internal static (long Hi, long Lo) Key(IReadOnlyList<int> inputIds, IReadOnlyList<int> scoredPositions)
    {
        var bytes = new byte[8 + (4 * (inputIds.Count + scoredPositions.Count))];
        BinaryPrimitives.WriteInt32LittleEndian(bytes, inputIds.Count);
        BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(4), scoredPositions.Count);
        var o = 8;
        foreach (var id in inputIds)
        {
            BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(o), id);
            o += 4;
        }

        foreach (var p in scoredPositions)
        {
            BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(o), p);
            o += 4;
        }

        var hash = SHA256.HashData(bytes);
        return (BinaryPrimitives.ReadInt64LittleEndian(hash), BinaryPrimitives.ReadInt64LittleEndian(hash.AsSpan(8)));
    }

    /// <summary>SHA-256 of a file, lower-case hex.</summary>
    internal static string File(string path)
    {
        using var stream = System.IO.File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }
}
