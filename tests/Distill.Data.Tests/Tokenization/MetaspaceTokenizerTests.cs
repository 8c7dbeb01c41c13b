using System.Runtime.InteropServices;
using System.Text.Json.Nodes;

namespace Distill.Data.Tests.Tokenization;

/// <summary>
/// SentencePiece-style tokenizer.json (as transformers converts Llama 2 / Mistral: legacy Prepend + Replace normaliser,
/// or a Metaspace pre-tokenizer; BPE with byte fallback), checked against the Rust Hugging Face tokenizers library.
/// </summary>
public sealed class MetaspaceTokenizerTests
{
    public static readonly string[] Texts =
    [
        "hello world",
        "hello  world",
        " hello",
        "Hello wörld 😀!",
        "hellohello world\nworld",
        "hello</s>world",
        "dd rr ll",
    ];

    public static TheoryData<string> Variants => ["legacy", "metaspace-first", "metaspace-split"];

    [Theory]
    [MemberData(nameof(Variants))]
    public void Encode_SentencePieceStyleJson_MatchesRustTokenizers(string variant)
    {
        using var folder = new Distill.Tests.Shared.TempFolder();
        File.WriteAllText(Path.Combine(folder.Path, "tokenizer.json"), Build(variant));
        File.WriteAllText(Path.Combine(folder.Path, "tokenizer_config.json"), "{\"bos_token\": \"<s>\", \"eos_token\": \"</s>\", \"unk_token\": \"<unk>\"}");
        File.WriteAllBytes(Path.Combine(folder.Path, "tokenizer.model"), SentencePieceModelBuilder.Build(TokenizerLoadingTests.TinySentencePiece));
        var ours = HfTokenizer.FromPretrained(folder.Path);
        Assert.Equal(TokenizerKind.SentencePiece, ours.Kind);
        Assert.EndsWith("tokenizer.json", ours.Source, StringComparison.Ordinal); // tokenizer.json wins, as in AutoTokenizer
        Assert.Equal(277, ours.VocabSize);

        // Known ids: "hello world" → <s>, ▁hello (7), ▁world (12); "ö" is not in the vocabulary → bytes C3 B6.
        Assert.Equal([1, 7, 12], ours.Encode("hello world", addSpecialTokens: true).Ids);
        var umlaut = ours.Encode("wö", addSpecialTokens: false);
        Assert.Equal(["▁w", "<0xC3>", "<0xB6>"], ours.ConvertIdsToTokens(umlaut.Ids));
        Assert.Equal(new TokenSpan(1, 2), umlaut.Offsets[1]);
        Assert.Equal("wö", ours.Decode(umlaut.Ids, skipSpecialTokens: true));

        if (!RuntimeInformation.IsOSPlatform(OSPlatform.Linux) || RuntimeInformation.ProcessArchitecture != Architecture.X64)
        {
            return;
        }

        using var rust = new Tokenizers.DotNet.Tokenizer(Path.Combine(folder.Path, "tokenizer.json"));
        foreach (var text in Texts)
        {
            var expected = rust.Encode(text).Select(id => (int)id).ToArray();
            var actual = ours.Encode(text, addSpecialTokens: true).Ids;
            Assert.True(expected.SequenceEqual(actual), $"{variant}: '{text}'\nrust {string.Join(",", expected)}\nours {string.Join(",", actual)}");
        }
    }

    [Fact]
    public void Encode_TokenizerModelAndLegacyJson_AgreeInsideTheVocabulary()
    {
        // The SentencePiece model path (Microsoft.ML.Tokenizers' SentencePieceTokenizer) and the legacy tokenizer.json path
        // describe the same vocabulary; the hand-written model has no byte fallback, so only text inside the vocabulary
        // (lowercase letters, spaces, the </s> token) is compared.
        using var modelFolder = new Distill.Tests.Shared.TempFolder();
        File.WriteAllBytes(Path.Combine(modelFolder.Path, "tokenizer.model"), SentencePieceModelBuilder.Build(TokenizerLoadingTests.TinySentencePiece));
        using var jsonFolder = new Distill.Tests.Shared.TempFolder();
        File.WriteAllText(Path.Combine(jsonFolder.Path, "tokenizer.json"), Build("legacy"));
        var model = HfTokenizer.FromPretrained(modelFolder.Path);
        var json = HfTokenizer.FromPretrained(jsonFolder.Path);
        foreach (var text in Texts.Where(t => t.Replace("</s>", string.Empty, StringComparison.Ordinal).All(c => c == ' ' || char.IsAsciiLetterLower(c))))
        {
            Assert.Equal(json.Encode(text, addSpecialTokens: true).Ids, model.Encode(text, addSpecialTokens: true).Ids);
            Assert.Equal(json.Encode(text, addSpecialTokens: true).Offsets, model.Encode(text, addSpecialTokens: true).Offsets);
        }
    }

    private static string Build(string variant)
    {
        var vocab = new JsonObject();
        var id = 0;
        foreach (var (piece, _, _) in TokenizerLoadingTests.TinySentencePiece)
        {
            vocab[piece] = id++;
        }

        for (var b = 0; b < 256; b++)
        {
            vocab[$"<0x{b:X2}>"] = id++;
        }

        // Merges in SentencePiece score order (higher score = earlier merge).
        string[] merges = ["l l", "▁ h", "▁h e", "▁he ll", "▁hell o", "▁ w", "o r", "▁w or", "l d", "▁wor ld"];
        var root = new JsonObject
        {
            ["version"] = "1.0",
            ["added_tokens"] = new JsonArray(
                new JsonObject { ["id"] = 0, ["content"] = "<unk>", ["special"] = true, ["lstrip"] = false, ["rstrip"] = false, ["normalized"] = false, ["single_word"] = false },
                new JsonObject { ["id"] = 1, ["content"] = "<s>", ["special"] = true, ["lstrip"] = false, ["rstrip"] = false, ["normalized"] = false, ["single_word"] = false },
                new JsonObject { ["id"] = 2, ["content"] = "</s>", ["special"] = true, ["lstrip"] = false, ["rstrip"] = false, ["normalized"] = false, ["single_word"] = false }),
            ["post_processor"] = JsonNode.Parse("""{"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}], "pair": [], "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}}"""),
            ["model"] = new JsonObject
            {
                ["type"] = "BPE",
                ["unk_token"] = "<unk>",
                ["fuse_unk"] = true,
                ["byte_fallback"] = true,
                ["vocab"] = vocab,
                ["merges"] = new JsonArray([.. merges.Select(m => (JsonNode)JsonValue.Create(m)!)]),
            },
        };
        if (variant == "legacy")
        {
            root["normalizer"] = JsonNode.Parse("""{"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "▁"}, {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]}""");
            root["pre_tokenizer"] = null;
            root["decoder"] = JsonNode.Parse("""{"type": "Sequence", "decoders": [{"type": "Replace", "pattern": {"String": "▁"}, "content": " "}, {"type": "ByteFallback"}, {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]}""");
        }
        else
        {
            var split = variant == "metaspace-split" ? "true" : "false";
            root["normalizer"] = null;
            root["pre_tokenizer"] = JsonNode.Parse($$"""{"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": {{split}}}""");
            root["decoder"] = JsonNode.Parse("""{"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": false}""");
        }

        return root.ToJsonString();
    }
}
