using System.Buffers.Binary;
using System.Text;
using System.Text.Json.Nodes;
using Distill.IO;
using Distill.Tests.Shared;
using TorchSharp;
using static TorchSharp.torch;

namespace Distill.Core.Tests.IO;

public class SafeTensorsTests
{
    /// <summary>Builds a safetensors file by hand, following the format spec, so reading is checked against the spec itself.</summary>
    private static byte[] BuildFile(string headerJson, byte[] data, bool pad = true)
    {
        var json = Encoding.UTF8.GetBytes(headerJson);
        var len = pad ? (json.Length + 7) / 8 * 8 : json.Length;
        var bytes = new byte[8 + len + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)len);
        Array.Fill(bytes, (byte)' ', 8, len);
        json.CopyTo(bytes, 8);
        data.CopyTo(bytes, 8 + len);
        return bytes;
    }

    [Fact]
    public void Open_HandBuiltSpecFile_ReadsValuesAndMetadata()
    {
        using var tmp = new TempFolder();
        var path = Path.Combine(tmp.Path, "a.safetensors");
        // Data section: a = F32 [2] {1.5, -2}, then b = BF16 [1] 0x3FC0 (= 1.5), then c = I64 [] 7; offsets relative to the data section.
        var data = new byte[8 + 2 + 8];
        BinaryPrimitives.WriteSingleLittleEndian(data.AsSpan(0), 1.5f);
        BinaryPrimitives.WriteSingleLittleEndian(data.AsSpan(4), -2f);
        BinaryPrimitives.WriteUInt16LittleEndian(data.AsSpan(8), 0x3FC0);
        BinaryPrimitives.WriteInt64LittleEndian(data.AsSpan(10), 7);
        var header = """{"b":{"dtype":"BF16","shape":[1],"data_offsets":[8,10]},"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"c":{"dtype":"I64","shape":[],"data_offsets":[10,18]}}""";
        File.WriteAllBytes(path, BuildFile(header, data));

        using var scope = torch.NewDisposeScope();
        using var f = SafeTensors.Open(path);
        Assert.Equal("pt", f.Metadata["format"]);
        Assert.Equal(new[] { "a", "b", "c" }, f.Tensors.Keys.Order());
        Assert.Equal(new float[] { 1.5f, -2f }, f.Read("a").data<float>().ToArray());
        var b = f.Read("b");
        Assert.Equal(ScalarType.BFloat16, b.dtype);
        Assert.Equal(1.5f, f.Read("b", dtype: ScalarType.Float32).item<float>());
        var c = f.Read("c");
        Assert.Empty(c.shape);
        Assert.Equal(7L, c.item<long>());
        Assert.Throws<KeyNotFoundException>(() => f.Read("missing"));
    }

    [Fact]
    public void Save_AllDtypes_RoundTripsBitExact()
    {
        using var tmp = new TempFolder();
        using var scope = torch.NewDisposeScope();
        var g = torch.manual_seed(1);
        var tensors = new Dictionary<string, Tensor>
        {
            ["f32"] = torch.randn(3, 5),
            ["f16"] = torch.randn(4, 2).to_type(ScalarType.Float16),
            ["bf16"] = torch.randn(2, 3, 2).to_type(ScalarType.BFloat16),
            ["i64"] = torch.arange(-3, 9, dtype: ScalarType.Int64).reshape(3, 4),
            ["i32"] = torch.tensor(new[] { int.MinValue, 0, int.MaxValue }),
            ["u8"] = torch.tensor(new byte[] { 0, 1, 255 }),
            ["bool"] = torch.tensor(new[] { true, false, true }),
            ["noncontiguous"] = torch.randn(4, 3).t(),
            ["scalar"] = torch.tensor(3.25f),
            ["empty"] = torch.zeros(0, 4),
        };
        var path = Path.Combine(tmp.Path, "x.safetensors");
        SafeTensors.Save(path, tensors, new Dictionary<string, string> { ["format"] = "pt" });

        var bytes = File.ReadAllBytes(path);
        var headerLen = (long)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        Assert.Equal(0, headerLen % 8); // header padded to 8 bytes

        var loaded = SafeTensors.Load(path);
        Assert.Equal(tensors.Keys.Order(), loaded.Keys.Order());
        foreach (var (name, t) in tensors)
        {
            Assert.Equal(t.dtype, loaded[name].dtype);
            Assert.Equal(t.shape, loaded[name].shape);
            Assert.True(t.eq(loaded[name]).all().item<bool>(), name);
        }

        using var f = SafeTensors.Open(path);
        Assert.Equal("pt", f.Metadata["format"]);
        Assert.False(Directory.EnumerateFiles(tmp.Path, "*.tmp").Any()); // atomic write leaves no temp file
        GC.KeepAlive(g);
    }

    [Fact]
    public void Read_Bf16ToFloat32_IsExactBitShift()
    {
        using var tmp = new TempFolder();
        using var scope = torch.NewDisposeScope();
        var bf = torch.randn(64).to_type(ScalarType.BFloat16);
        var path = Path.Combine(tmp.Path, "b.safetensors");
        SafeTensors.Save(path, new Dictionary<string, Tensor> { ["w"] = bf });
        using var f = SafeTensors.Open(path);
        var asF32 = f.Read("w", dtype: ScalarType.Float32);
        // f32 bits = bf16 bits << 16 (hf_conventions.md #12).
        var raw = File.ReadAllBytes(path).AsSpan(8 + (int)BinaryPrimitives.ReadUInt64LittleEndian(File.ReadAllBytes(path)));
        var values = asF32.data<float>().ToArray();
        for (var i = 0; i < values.Length; i++)
        {
            var bits = (uint)BinaryPrimitives.ReadUInt16LittleEndian(raw[(2 * i)..]) << 16;
            Assert.Equal(BitConverter.UInt32BitsToSingle(bits), values[i]);
        }
    }

    [Fact]
    public void SaveSharded_SmallLimit_WritesIndexAndRoundTrips()
    {
        using var tmp = new TempFolder();
        using var scope = torch.NewDisposeScope();
        var tensors = new Dictionary<string, Tensor>();
        for (var i = 0; i < 5; i++)
        {
            tensors[$"layer.{i}.weight"] = torch.randn(10, 10); // 400 bytes each
        }

        tensors["big"] = torch.randn(50, 10); // 2000 bytes: larger than a shard, gets its own
        var files = SafeTensors.SaveSharded(tmp.Path, tensors, maxShardBytes: 900);
        // Name order: big (2000) | layer.0, layer.1 (800) | layer.2, layer.3 | layer.4.
        Assert.Equal(4, files.Count);
        Assert.Equal("model-00001-of-00004.safetensors", files[0]);

        var index = JsonNode.Parse(File.ReadAllText(Path.Combine(tmp.Path, SafeTensors.IndexFileName)))!;
        Assert.Equal(2000 + (5 * 400), index["metadata"]!["total_size"]!.GetValue<long>());
        Assert.Equal("model-00003-of-00004.safetensors", index["weight_map"]!["layer.3.weight"]!.GetValue<string>());

        var loaded = SafeTensors.LoadSharded(tmp.Path);
        Assert.Equal(tensors.Count, loaded.Count);
        foreach (var (name, t) in tensors)
        {
            Assert.True(t.eq(loaded[name]).all().item<bool>(), name);
        }

        // Re-saving with fewer shards removes the stale ones.
        SafeTensors.SaveSharded(tmp.Path, tensors, maxShardBytes: 1 << 20);
        Assert.Single(Directory.EnumerateFiles(tmp.Path, "model-*.safetensors"));
        Assert.Equal(tensors.Count, SafeTensors.LoadSharded(tmp.Path, dtype: ScalarType.BFloat16).Values.Count(t => t.dtype == ScalarType.BFloat16));
    }

    [Fact]
    public void LoadSharded_IndexNamesMissingShard_Throws()
    {
        using var tmp = new TempFolder();
        File.WriteAllText(Path.Combine(tmp.Path, SafeTensors.IndexFileName), """{"metadata":{},"weight_map":{"w":"model-00001-of-00002.safetensors"}}""");
        var e = Assert.Throws<InvalidDataException>(() => SafeTensors.LoadSharded(tmp.Path));
        Assert.Contains("model-00001-of-00002.safetensors", e.Message, StringComparison.Ordinal);
        Assert.Contains("'w'", e.Message, StringComparison.Ordinal);
    }

    public static TheoryData<string, string, int, string> CorruptCases => new()
    {
        // name, header JSON, data bytes, expected message fragment
        { "overlap", """{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}""", 12, "overlaps" },
        { "wrong size", """{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}""", 8, "needs 12" },
        { "past end", """{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}""", 8, "past the end" },
        { "bad dtype", """{"a":{"dtype":"Q4","shape":[2],"data_offsets":[0,8]}}""", 8, "unsupported dtype 'Q4'" },
        { "negative dim", """{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}""", 8, "non-negative" },
        { "reversed offsets", """{"a":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}}""", 8, "begin <= end" },
        { "not json", """{"a": {"dtype": """, 8, "not valid JSON" },
        { "array root", """[1,2]""", 8, "JSON object" },
        { "missing shape", """{"a":{"dtype":"F32","data_offsets":[0,8]}}""", 8, "'shape'" },
        { "duplicate", """{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}""", 8, "'a' appears twice" },
        { "bad metadata", """{"__metadata__":{"x":1}}""", 0, "__metadata__" },
    };

    [Theory]
    [MemberData(nameof(CorruptCases))]
    public void Open_CorruptHeader_ThrowsNamingFileAndTensor(string name, string header, int dataBytes, string fragment)
    {
        using var tmp = new TempFolder();
        var path = Path.Combine(tmp.Path, "corrupt.safetensors");
        File.WriteAllBytes(path, BuildFile(header, new byte[dataBytes]));
        var e = Assert.Throws<InvalidDataException>(() => SafeTensors.Open(path).Dispose());
        Assert.Contains(fragment, e.Message, StringComparison.Ordinal);
        Assert.Contains(path, e.Message, StringComparison.Ordinal);
        if (header.Contains("\"a\"", StringComparison.Ordinal) && name != "not json" && name != "array root")
        {
            Assert.Contains("'a'", e.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Open_TruncatedFile_Throws()
    {
        using var tmp = new TempFolder();
        using var scope = torch.NewDisposeScope();
        var path = Path.Combine(tmp.Path, "t.safetensors");
        SafeTensors.Save(path, new Dictionary<string, Tensor> { ["w"] = torch.randn(16) });
        var bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..^10]);
        var e = Assert.Throws<InvalidDataException>(() => SafeTensors.Load(path));
        Assert.Contains("'w'", e.Message, StringComparison.Ordinal);
        Assert.Contains("truncated", e.Message, StringComparison.Ordinal);

        File.WriteAllBytes(path, bytes[..5]);
        Assert.Contains("too short", Assert.Throws<InvalidDataException>(() => SafeTensors.Load(path)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Open_HeaderLengthBeyondFile_Throws()
    {
        using var tmp = new TempFolder();
        var path = Path.Combine(tmp.Path, "h.safetensors");
        var bytes = BuildFile("""{}""", new byte[4]);
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, 4096);
        File.WriteAllBytes(path, bytes);
        var e = Assert.Throws<InvalidDataException>(() => SafeTensors.Open(path));
        Assert.Contains("header length 4096", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Open_HeaderLengthAboveLimit_ThrowsWithoutAllocating()
    {
        using var tmp = new TempFolder();
        var path = Path.Combine(tmp.Path, "huge.safetensors");
        var bytes = BuildFile("""{}""", []);
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, ulong.MaxValue - 3);
        File.WriteAllBytes(path, bytes);
        var e = Assert.Throws<InvalidDataException>(() => SafeTensors.Open(path));
        Assert.Contains("exceeds the limit", e.Message, StringComparison.Ordinal);
    }
}
