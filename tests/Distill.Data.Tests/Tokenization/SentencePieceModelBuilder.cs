using System.Text;

namespace Distill.Data.Tests.Tokenization;

/// <summary>
/// Writes a minimal SentencePiece <c>tokenizer.model</c> (protobuf ModelProto) by hand, so the SentencePiece path can
/// be tested without downloading a model. Field numbers from sentencepiece_model.proto: ModelProto.pieces = 1
/// (piece = 1, score = 2, type = 3), trainer_spec = 2 (model_type = 3, byte_fallback = 35, unk_id = 40, bos_id = 41,
/// eos_id = 42, pad_id = 43), normalizer_spec = 3 (name = 1, add_dummy_prefix = 3, remove_extra_whitespaces = 4,
/// escape_whitespaces = 5).
/// </summary>
internal static class SentencePieceModelBuilder
{
    public const int Normal = 1;
    public const int Unknown = 2;
    public const int Control = 3;

    public static byte[] Build(IReadOnlyList<(string Piece, float Score, int Type)> pieces)
    {
        using var model = new MemoryStream();
        foreach (var (piece, score, type) in pieces)
        {
            using var p = new MemoryStream();
            WriteString(p, 1, piece);
            WriteTag(p, 2, 5);
            p.Write(BitConverter.GetBytes(score));
            WriteVarintField(p, 3, (ulong)type);
            WriteBytes(model, 1, p.ToArray());
        }

        using var trainer = new MemoryStream();
        WriteVarintField(trainer, 3, 2); // BPE
        WriteVarintField(trainer, 35, 0);
        WriteVarintField(trainer, 40, 0);
        WriteVarintField(trainer, 41, 1);
        WriteVarintField(trainer, 42, 2);
        WriteVarintField(trainer, 43, unchecked((ulong)-1L));
        WriteBytes(model, 2, trainer.ToArray());

        using var normalizer = new MemoryStream();
        WriteString(normalizer, 1, "identity");
        WriteVarintField(normalizer, 3, 1);
        WriteVarintField(normalizer, 4, 0);
        WriteVarintField(normalizer, 5, 1);
        WriteBytes(model, 3, normalizer.ToArray());
        return model.ToArray();
    }

    private static void WriteTag(Stream s, int field, int wireType) => WriteVarint(s, (ulong)((field << 3) | wireType));

    private static void WriteVarintField(Stream s, int field, ulong value)
    {
        WriteTag(s, field, 0);
        WriteVarint(s, value);
    }

    private static void WriteString(Stream s, int field, string value) => WriteBytes(s, field, Encoding.UTF8.GetBytes(value));

    private static void WriteBytes(Stream s, int field, byte[] value)
    {
        WriteTag(s, field, 2);
        WriteVarint(s, (ulong)value.Length);
        s.Write(value);
    }

    private static void WriteVarint(Stream s, ulong value)
    {
        while (value >= 0x80)
        {
            s.WriteByte((byte)(value | 0x80));
            value >>= 7;
        }

        s.WriteByte((byte)value);
    }
}
