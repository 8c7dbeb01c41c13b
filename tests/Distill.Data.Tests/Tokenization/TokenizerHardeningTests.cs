using System.Diagnostics;
using System.Text.Json.Nodes;
using Distill.Tests.Shared;

namespace Distill.Data.Tests.Tokenization;

/// <summary>Tokenizer files: regex match timeouts, repeated keys, special files.</summary>
public sealed class TokenizerHardeningTests
{
    private static string WriteWithPreTokenizer(string dir, JsonNode preTokenizer)
    {
        BundledData.WriteTokenizer(BundledTokenizer.Bytes, dir);
        var path = Path.Combine(dir, "tokenizer.json");
        var root = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        root["pre_tokenizer"] = preTokenizer;
        File.WriteAllText(path, root.ToJsonString());
        return path;
    }

    [Fact]
    public void Encode_CatastrophicSplitRegex_TimesOutWithErrorNamingFileAndPattern()
    {
        using var tmp = new TempFolder();
        var path = WriteWithPreTokenizer(tmp.Path, JsonNode.Parse("""
            {"type": "Sequence", "pretokenizers": [
              {"type": "Split", "pattern": {"Regex": "(a|aa)+$"}, "behavior": "Isolated", "invert": false},
              {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false}]}
            """)!);
        var tokenizer = HfTokenizer.FromPretrained(tmp.Path);
        Assert.NotEmpty(tokenizer.EncodeToIds("aaaa", addSpecialTokens: false)); // harmless input works

        var sw = Stopwatch.StartNew();
        var e = Assert.Throws<InvalidDataException>(() => tokenizer.EncodeToIds(new string('a', 60) + "!", addSpecialTokens: false));
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(30), $"took {sw.Elapsed}");
        Assert.Contains(path, e.Message, StringComparison.Ordinal);
        Assert.Contains("(a|aa)+$", e.Message, StringComparison.Ordinal);
        Assert.Contains("timeout", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void FromPretrained_RepeatedKeyInTokenizerJson_ThrowsNamingFileAndKey()
    {
        using var tmp = new TempFolder();
        BundledData.WriteTokenizer(BundledTokenizer.Bytes, tmp.Path);
        var path = Path.Combine(tmp.Path, "tokenizer.json");
        var text = File.ReadAllText(path);
        File.WriteAllText(path, string.Concat("{\"normalizer\": null, ", text.AsSpan(text.IndexOf('{', StringComparison.Ordinal) + 1)));
        var e = Assert.Throws<InvalidDataException>(() => HfTokenizer.FromPretrained(tmp.Path));
        Assert.Contains(path, e.Message, StringComparison.Ordinal);
        Assert.Contains("'normalizer' appears twice", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void FromPretrained_TokenizerJsonLinkedToDevice_RejectedBeforeReading()
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }

        using var tmp = new TempFolder();
        File.CreateSymbolicLink(Path.Combine(tmp.Path, "tokenizer.json"), "/dev/zero");
        var e = Assert.Throws<InvalidDataException>(() => HfTokenizer.FromPretrained(tmp.Path));
        Assert.Contains("tokenizer.json", e.Message, StringComparison.Ordinal);
        Assert.Contains("not a regular file", e.Message, StringComparison.Ordinal);
    }
}
