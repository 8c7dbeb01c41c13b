using System.Text.Json;
using Microsoft.ML.Tokenizers;

namespace Distill.Data.Tests.Tokenization;

public sealed class HfTokenizerTests
{
    /// <summary>Varied text: prose, code, numbers, unicode (accents, CJK, emoji, combining marks), whitespace runs, special tokens.</summary>
    public static readonly string[] Texts =
    [
        "Hello world",
        "The quick brown fox jumps over the lazy dog. It's 3.14159 o'clock, isn't it?",
        "def add(a, b):\n    return a + b  # sum\n\n\nprint(add(12345, 678))",
        "for (int i = 0; i < 10; ++i) { sum += x[i] * 2; }",
        "Numbers: 1234567890, -42, 1e-5, 0x1F, 3,000,000.00 and 2026-11-29T16:00Z",
        "naïve café résumé — “quotes” ‘single’ … ©®™",
        "日本語のテキストと中文混合 한국어 text",
        "emoji 😀👍🏽 and flags 🇫🇷 plus ZWJ 👨‍👩‍👧",
        "   leading spaces, tabs\t\tand\r\nCRLF   trailing   ",
        "\n\n\n\nmany newlines\n \n",
        "Ünïcödé ÀÉÎÕÜ Ωμέγα кириллица",
        "e\u0301 combining acute and \u200b zero width",
        "I'LL SHOUT, you'd whisper; we've they're",
        "Before<|endoftext|>After <|endoftext|> end",
        "",
    ];

    public static TheoryData<string> Models => ["gpt2", "cl100k", "o200k"];

    [Fact]
    public void Encode_Gpt2HelloWorld_MatchesKnownIds()
    {
        // GPT-2's ids for "Hello world" are [15496, 995] ("Hello", "Ġworld"); well-known from the HF model card examples.
        var tokenizer = TiktokenFolders.LoadGpt2();
        var encoded = tokenizer.Encode("Hello world", addSpecialTokens: false);
        Assert.Equal([15496, 995], encoded.Ids);
        Assert.Equal(["Hello", "Ġworld"], tokenizer.ConvertIdsToTokens(encoded.Ids));
        Assert.Equal([new TokenSpan(0, 5), new TokenSpan(5, 11)], encoded.Offsets);
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void Encode_TokenizerJsonFromTiktokenRanks_MatchesTiktoken(string model)
    {
        var (hf, tiktoken) = Load(model);
        foreach (var text in Texts)
        {
            var expected = tiktoken.EncodeToIds(text);
            var actual = hf.Encode(text, addSpecialTokens: false).Ids;
            Assert.True(expected.SequenceEqual(actual), $"{model}: '{text}'\nexpected {string.Join(",", expected)}\nactual   {string.Join(",", actual)}");
        }
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void Encode_VariedText_MatchesCommittedIds(string model)
    {
        var hf = Load(model).Hf;
        var expected = ReadFixture()[model];
        Assert.Equal(Texts.Length, expected.Count);
        for (var i = 0; i < Texts.Length; i++)
        {
            Assert.Equal(expected[i], hf.Encode(Texts[i], addSpecialTokens: false).Ids);
        }
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void Decode_EncodedText_RoundTrips(string model)
    {
        var hf = Load(model).Hf;
        foreach (var text in Texts)
        {
            var ids = hf.Encode(text, addSpecialTokens: false).Ids;
            Assert.Equal(text, hf.Decode(ids, skipSpecialTokens: false));
        }
    }

    [Fact]
    public void Decode_SkipSpecialTokens_DropsEndOfText()
    {
        var hf = TiktokenFolders.LoadGpt2();
        var ids = hf.Encode("Before<|endoftext|>After", addSpecialTokens: false).Ids;
        Assert.Contains(50256, ids);
        Assert.Equal("BeforeAfter", hf.Decode(ids, skipSpecialTokens: true));
        Assert.True(hf.IsSpecial(50256));
        Assert.False(hf.IsSpecial(15496));
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void Encode_Offsets_CoverTheTokenText(string model)
    {
        var hf = Load(model).Hf;
        foreach (var text in Texts)
        {
            var encoded = hf.Encode(text, addSpecialTokens: false);
            var previousEnd = 0;
            for (var i = 0; i < encoded.Count; i++)
            {
                var span = encoded.Offsets[i];
                Assert.InRange(span.Start, 0, text.Length);
                Assert.InRange(span.End, span.Start, text.Length);
                var piece = text[span.Start..span.End];
                var decoded = hf.Decode([encoded.Ids[i]], skipSpecialTokens: false);
                if (!decoded.Contains('\uFFFD', StringComparison.Ordinal))
                {
                    // A token holding whole characters decodes to exactly the text it covers, and spans are contiguous.
                    Assert.True(piece == decoded, $"{model} '{text}' token {i}: span {span} covers '{piece}', token decodes to '{decoded}'");
                    Assert.True(previousEnd == span.Start, $"{model} '{text}' token {i}: span {span} does not start at {previousEnd}");
                }

                previousEnd = Math.Max(previousEnd, span.End);
            }

            Assert.Equal(text.Length, previousEnd);
        }
    }

    [Fact]
    public void FromPretrained_SpecialTokens_ResolvedFromConfig()
    {
        var hf = TiktokenFolders.LoadCl100k();
        Assert.Equal(100257, hf.EosTokenId);
        Assert.Equal(100257, hf.BosTokenId);
        Assert.Null(hf.PadTokenId);
        Assert.Equal(100277, hf.VocabSize);
        Assert.Equal(100276, hf.TokenToId("<|endofprompt|>"));
        Assert.Null(hf.TokenToId("definitely-not-a-token"));
        Assert.Equal("Ġ", hf.SpaceMarker);
        Assert.Empty(hf.Encode("x", addSpecialTokens: true).Ids.Take(0));
        Assert.Equal(hf.Encode("x", addSpecialTokens: false).Ids, hf.Encode("x", addSpecialTokens: true).Ids);
    }

    /// <summary>Regenerates fixtures/tiktoken_expected_ids.json from Microsoft.ML.Tokenizers' tiktoken implementation (set DISTILL_REGEN_FIXTURES=1).</summary>
    [Fact]
    public void Fixture_RegenerateWhenRequested()
    {
        if (Environment.GetEnvironmentVariable("DISTILL_REGEN_FIXTURES") != "1")
        {
            Assert.True(File.Exists(FixturePath));
            return;
        }

        var data = new Dictionary<string, List<int[]>>();
        foreach (var model in new[] { "gpt2", "cl100k", "o200k" })
        {
            var tiktoken = Tiktoken(model);
            data[model] = [.. Texts.Select(t => tiktoken.EncodeToIds(t).ToArray())];
        }

        var source = Path.Combine(FindRepoTestsDir(), "fixtures", "tiktoken_expected_ids.json");
        File.WriteAllText(source, JsonSerializer.Serialize(data));
    }

    internal static (HfTokenizer Hf, Tokenizer Tiktoken) Load(string model) => model switch
    {
        "gpt2" => (Cached.Gpt2.Value, Tiktoken(model)),
        "cl100k" => (Cached.Cl100k.Value, Tiktoken(model)),
        "o200k" => (Cached.O200k.Value, Tiktoken(model)),
        _ => throw new ArgumentOutOfRangeException(nameof(model)),
    };

    // Microsoft.ML.Tokenizers' tiktoken implementation (ranks + tiktoken's own byte-pair loop), with its built-in special tokens.
    private static Tokenizer Tiktoken(string model) => model switch
    {
        "gpt2" => TiktokenTokenizer.CreateForModel("gpt2"),
        "cl100k" => TiktokenTokenizer.CreateForEncoding("cl100k_base"),
        _ => TiktokenTokenizer.CreateForEncoding("o200k_base"),
    };

    private static string FixturePath => Path.Combine(AppContext.BaseDirectory, "fixtures", "tiktoken_expected_ids.json");

    private static Dictionary<string, List<int[]>> ReadFixture() =>
        JsonSerializer.Deserialize<Dictionary<string, List<int[]>>>(File.ReadAllText(FixturePath))!;

    internal static string FindRepoTestsDir()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Distill.Data.Tests.csproj")))
        {
            dir = dir.Parent;
        }

        return dir?.FullName ?? throw new InvalidOperationException("Distill.Data.Tests.csproj not found above the test output folder.");
    }

    internal static class Cached
    {
        public static readonly Lazy<HfTokenizer> Gpt2 = new(TiktokenFolders.LoadGpt2);
        public static readonly Lazy<HfTokenizer> Cl100k = new(TiktokenFolders.LoadCl100k);
        public static readonly Lazy<HfTokenizer> O200k = new(TiktokenFolders.LoadO200k);
    }
}
