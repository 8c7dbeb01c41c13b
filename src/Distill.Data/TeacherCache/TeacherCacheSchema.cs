using Apache.Arrow;
using Apache.Arrow.Types;

namespace Distill.Data;

/// <summary>The Arrow schemas of a teacher cache's chunk files and index (see docs/teachers.md).</summary>
internal static class TeacherCacheSchema
{
    internal const string Row = "row";
    internal const string Position = "position";
    internal const string TopKIds = "topk_ids";
    internal const string TopKLogProbs = "topk_logprobs";
    internal const string TailLogMass = "tail_logmass";
    internal const string KeyHi = "key_hi";
    internal const string KeyLo = "key_lo";
    internal const string Chunk = "chunk";
    internal const string Offset = "offset";
    internal const string Count = "count";
    internal const string IndexFile = "index.arrow";
    internal const string ManifestFile = "manifest.json";

    internal static string ChunkFile(int index) => $"chunk-{index:D5}.arrow";

    internal static string ChunkSidecar(int index) => $"chunk-{index:D5}.json";

    /// <summary>One record per scored position: row, position, k ids, k log-probs, log tail mass.</summary>
    internal static Schema Chunks(int k) => new Schema.Builder()
        .Field(new Field(Row, Int64Type.Default, nullable: false))
        .Field(new Field(Position, Int32Type.Default, nullable: false))
        .Field(new Field(TopKIds, new FixedSizeListType(new Field("item", Int32Type.Default, nullable: false), k), nullable: false))
        .Field(new Field(TopKLogProbs, new FixedSizeListType(new Field("item", FloatType.Default, nullable: false), k), nullable: false))
        .Field(new Field(TailLogMass, FloatType.Default, nullable: false))
        .Metadata("distill.teacher_cache.format_version", TeacherCacheManifest.CurrentFormatVersion.ToString(System.Globalization.CultureInfo.InvariantCulture))
        .Build();

    /// <summary>One record per dataset row: row, key, chunk, first record in the chunk, number of records.</summary>
    internal static Schema Index() => new Schema.Builder()
        .Field(new Field(Row, Int64Type.Default, nullable: false))
        .Field(new Field(KeyHi, Int64Type.Default, nullable: false))
        .Field(new Field(KeyLo, Int64Type.Default, nullable: false))
        .Field(new Field(Chunk, Int32Type.Default, nullable: false))
        .Field(new Field(Offset, Int32Type.Default, nullable: false))
        .Field(new Field(Count, Int32Type.Default, nullable: false))
        .Build();

    internal static Int64Array Int64(ReadOnlySpan<long> values) =>
        new(new ArrowBuffer.Builder<long>(values.Length).Append(values).Build(), ArrowBuffer.Empty, values.Length, 0, 0);

    internal static Int32Array Int32(ReadOnlySpan<int> values) =>
        new(new ArrowBuffer.Builder<int>(values.Length).Append(values).Build(), ArrowBuffer.Empty, values.Length, 0, 0);

    internal static FloatArray Float(ReadOnlySpan<float> values) =>
        new(new ArrowBuffer.Builder<float>(values.Length).Append(values).Build(), ArrowBuffer.Empty, values.Length, 0, 0);

    internal static FixedSizeListArray List(Schema schema, string column, IArrowArray values, int length) =>
        new(schema.GetFieldByName(column).DataType, length, values, ArrowBuffer.Empty, 0, 0);

    /// <summary>Throws unless <paramref name="actual"/> has the fields (names and types) of <paramref name="expected"/>.</summary>
    internal static void Check(Schema actual, Schema expected, string path)
    {
        var a = string.Join(", ", actual.FieldsList.Select(Describe));
        var e = string.Join(", ", expected.FieldsList.Select(Describe));
        if (a != e)
        {
            throw new InvalidDataException($"{path}: Arrow schema ({a}) differs from the teacher-cache schema ({e}).");
        }
    }

    private static string Describe(Field f) => f.DataType is FixedSizeListType l ? $"{f.Name}: fixed_size_list<{l.ValueDataType.Name}>[{l.ListSize}]" : $"{f.Name}: {f.DataType.Name}";
}
