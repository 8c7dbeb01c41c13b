using System.Buffers.Binary;
using System.Diagnostics;
using System.Text;
using Distill.Core.Tests.Models;
using Distill.IO;
using Distill.Models;
using Distill.Tests.Shared;
using Microsoft.Extensions.Logging;
using static TorchSharp.torch;

namespace Distill.Core.Tests.IO;

/// <summary>Symlinks and special files, safetensors layout rules, dtype agreement, non-finite weights.</summary>
public class ModelFileHardeningTests
{
    private static byte[] BuildFile(string headerJson, byte[] data, int pad = 8)
    {
        var json = Encoding.UTF8.GetBytes(headerJson);
        var len = (json.Length + pad - 1) / pad * pad;
        var bytes = new byte[8 + len + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)len);
        Array.Fill(bytes, (byte)' ', 8, len);
        json.CopyTo(bytes, 8);
        data.CopyTo(bytes, 8 + len);
        return bytes;
    }

    /// <summary>
    /// The header is padded with spaces to a multiple of 8; lowering the declared length by 1–7 bytes keeps valid JSON but makes
    /// the data section 1–7 bytes longer than the tensors, which once loaded silently with shifted weights. Raising it pulls
    /// data bytes into the header.
    /// </summary>
    [Theory]
    [InlineData(-1)]
    [InlineData(-3)]
    [InlineData(-7)]
    [InlineData(1)]
    [InlineData(4)]
    public void Open_HeaderLengthOffByK_Throws(int k)
    {
        using var tmp = new TempFolder();
        var path = Path.Combine(tmp.Path, "w.safetensors");
        using (var scope = NewDisposeScope())
        {
            SafeTensors.Save(path, new Dictionary<string, Tensor> { ["a"] = arange(6, dtype: ScalarType.Float32), ["b"] = ones(3) });
        }

        var bytes = File.ReadAllBytes(path);
        var n = BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        Assert.True(n - (ulong)Encoding.UTF8.GetByteCount("{}") > 7); // sanity: header long enough
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)((long)n + k));
        File.WriteAllBytes(path, bytes);
        var e = Assert.Throws<InvalidDataException>(() => SafeTensors.Load(path));
        Assert.Contains(path, e.Message, StringComparison.Ordinal);
    }

    public static TheoryData<string, string, int, string> LayoutCases => new()
    {
        { "gap", """{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[2],"data_offsets":[4,6]}}""", 6, "unused bytes" },
        { "not from zero", """{"a":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}}""", 4, "not 0" },
        { "trailing bytes", """{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}""", 5, "data section" },
        { "duplicate inner key", """{"a":{"dtype":"U8","dtype":"F32","shape":[2],"data_offsets":[0,2]}}""", 2, "'dtype' appears twice" },
    };

    [Theory]
    [MemberData(nameof(LayoutCases))]
    public void Open_OffsetsNotContiguousOrNotCoveringData_Throws(string name, string header, int dataBytes, string fragment)
    {
        _ = name;
        using var tmp = new TempFolder();
        var path = Path.Combine(tmp.Path, "x.safetensors");
        File.WriteAllBytes(path, BuildFile(header, new byte[dataBytes]));
        var e = Assert.Throws<InvalidDataException>(() => SafeTensors.Open(path).Dispose());
        Assert.Contains(fragment, e.Message, StringComparison.Ordinal);
        Assert.Contains(path, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Open_InvalidUtf8InHeader_Throws()
    {
        using var tmp = new TempFolder();
        var path = Path.Combine(tmp.Path, "x.safetensors");
        var bytes = BuildFile("""{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}""", new byte[2]);
        bytes[10] = 0xFF; // inside the key "a"'s quotes region
        File.WriteAllBytes(path, bytes);
        var e = Assert.Throws<InvalidDataException>(() => SafeTensors.Open(path).Dispose());
        Assert.Contains("UTF-8", e.Message, StringComparison.Ordinal);
        Assert.Contains(path, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Open_HugeHeaderWithHugeName_MessageIsBounded()
    {
        using var tmp = new TempFolder();
        var path = Path.Combine(tmp.Path, "x.safetensors");
        var longName = new string('n', 5_000_000);
        File.WriteAllBytes(path, BuildFile("{\"" + longName + "\":{\"dtype\":\"Q9\",\"shape\":[2],\"data_offsets\":[0,2]}}", new byte[2]));
        var e = Assert.Throws<InvalidDataException>(() => SafeTensors.Open(path).Dispose());
        Assert.Contains("unsupported dtype", e.Message, StringComparison.Ordinal);
        Assert.True(e.Message.Length < 2_000, $"message has {e.Message.Length} characters");
    }

    [Fact]
    public void Open_SpecialFiles_RejectedBeforeReading()
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }

        using var tmp = new TempFolder();
        var link = Path.Combine(tmp.Path, "zero.safetensors");
        File.CreateSymbolicLink(link, "/dev/zero");
        var e = Assert.Throws<InvalidDataException>(() => SafeTensors.Open(link).Dispose());
        Assert.Contains("not a regular file", e.Message, StringComparison.Ordinal);
        Assert.Contains(link, e.Message, StringComparison.Ordinal);

        var fifo = Path.Combine(tmp.Path, "config.json");
        using (var mk = Process.Start(new ProcessStartInfo("mkfifo", fifo) { UseShellExecute = false })!)
        {
            mk.WaitForExit();
            Assert.Equal(0, mk.ExitCode);
        }

        var sw = Stopwatch.StartNew();
        var e2 = Assert.Throws<InvalidDataException>(() => ModelConfigLoader.Load(tmp.Path));
        Assert.Contains(fifo, e2.Message, StringComparison.Ordinal);
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(5)); // did not block on the FIFO

        var dangling = Path.Combine(tmp.Path, "gone.safetensors");
        File.CreateSymbolicLink(dangling, "../blobs/0123abcd");
        var e3 = Assert.Throws<FileNotFoundException>(() => SafeTensors.Open(dangling).Dispose());
        Assert.Contains("0123abcd", e3.Message, StringComparison.Ordinal);
    }

    /// <summary>
    /// The Hugging Face hub cache: <c>models--org--name/blobs/&lt;hash&gt;</c> hold the content and
    /// <c>snapshots/&lt;rev&gt;/&lt;file&gt;</c> are relative symlinks <c>../../blobs/&lt;hash&gt;</c>; <c>refs/main</c> names the revision.
    /// </summary>
    [Theory]
    [InlineData(null)]
    [InlineData(4096L)]
    public void FromPretrained_HubCacheSymlinkLayout_LoadsIdenticalModel(long? shardBytes)
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }

        using var scope = NewDisposeScope();
        using var tmp = new TempFolder();
        var source = Path.Combine(tmp.Path, "plain");
        using var original = TinyModels.Create("llama", seed: 3);
        original.SavePretrained(source, shardBytes);

        var repo = Path.Combine(tmp.Path, "hub", "models--tiny--llama");
        const string rev = "0123456789abcdef0123456789abcdef01234567";
        var snapshot = Path.Combine(repo, "snapshots", rev);
        Directory.CreateDirectory(Path.Combine(repo, "blobs"));
        Directory.CreateDirectory(snapshot);
        Directory.CreateDirectory(Path.Combine(repo, "refs"));
        File.WriteAllText(Path.Combine(repo, "refs", "main"), rev);
        foreach (var file in Directory.GetFiles(source))
        {
            var hash = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(file)));
            File.Copy(file, Path.Combine(repo, "blobs", hash));
            File.CreateSymbolicLink(Path.Combine(snapshot, Path.GetFileName(file)), Path.Combine("..", "..", "blobs", hash));
        }

        Assert.True(new FileInfo(Path.Combine(snapshot, "config.json")).LinkTarget is not null);
        using var loaded = AutoCausalLM.FromPretrained(snapshot);
        foreach (var (name, p) in original.state_dict())
        {
            Assert.True(p.eq(loaded.state_dict()[name]).all().item<bool>(), name);
        }
    }

    [Fact]
    public void FromPretrained_IntegerTensorForFloatWeight_Throws()
    {
        using var scope = NewDisposeScope();
        using var tmp = new TempFolder();
        using var model = TinyModels.Create("gpt2");
        model.SavePretrained(tmp.Path);
        var file = Path.Combine(tmp.Path, SafeTensors.SingleFileName);
        var tensors = SafeTensors.Load(file);
        var victim = tensors.Keys.First(k => k.EndsWith("ln_f.weight", StringComparison.Ordinal));
        tensors[victim] = tensors[victim].to_type(ScalarType.Int32);
        SafeTensors.Save(file, tensors);
        var e = Assert.Throws<InvalidDataException>(() => AutoCausalLM.FromPretrained(tmp.Path));
        Assert.Contains(victim, e.Message, StringComparison.Ordinal);
        Assert.Contains("I32", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void FromPretrained_NonFiniteWeight_WarnsByDefaultAndThrowsWhenRejected()
    {
        using var scope = NewDisposeScope();
        using var tmp = new TempFolder();
        using var model = TinyModels.Create("qwen2");
        model.SavePretrained(tmp.Path);
        var file = Path.Combine(tmp.Path, SafeTensors.SingleFileName);
        var tensors = SafeTensors.Load(file);
        var victim = tensors.Keys.First(k => k.EndsWith("mlp.up_proj.weight", StringComparison.Ordinal));
        var t = tensors[victim].clone();
        t.view(-1)[3] = tensor(float.NaN);
        t.view(-1)[5] = tensor(float.PositiveInfinity);
        tensors[victim] = t;
        SafeTensors.Save(file, tensors);

        var logger = new ListLogger();
        using (AutoCausalLM.FromPretrained(tmp.Path, logger: logger))
        {
        }

        var warning = Assert.Single(logger.Entries, x => x.Level == LogLevel.Warning);
        Assert.Contains(victim, warning.Message, StringComparison.Ordinal);
        Assert.Contains("2 NaN/infinite", warning.Message, StringComparison.Ordinal);

        var e = Assert.Throws<InvalidDataException>(() => AutoCausalLM.FromPretrained(tmp.Path, rejectNonFiniteWeights: true));
        Assert.Contains(victim, e.Message, StringComparison.Ordinal);
        Assert.Contains(file, e.Message, StringComparison.Ordinal);
    }

    private sealed class ListLogger : ILogger
    {
        public List<(LogLevel Level, string Message)> Entries { get; } = [];

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            Entries.Add((logLevel, formatter(state, exception)));
    }
}
