using System.Text.Json;
using Microsoft.Extensions.Logging;

namespace Distill.Data.Tests.Tokenization;

public sealed class TokenizerLoadingTests
{
    [Fact]
    public void FromPretrained_MissingOrEmptyFolder_ThrowsClearly()
    {
        using var folder = new Distill.Tests.Shared.TempFolder();
        var missing = Path.Combine(folder.Path, "nope");
        Assert.Contains(missing, Assert.Throws<DirectoryNotFoundException>(() => HfTokenizer.FromPretrained(missing)).Message, StringComparison.Ordinal);
        var ex = Assert.Throws<FileNotFoundException>(() => HfTokenizer.FromPretrained(folder.Path));
        Assert.Contains("tokenizer.json, tokenizer.model, or vocab.json + merges.txt", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void FromPretrained_UnsupportedOrMalformedFiles_NameTheFile()
    {
        using var folder = new Distill.Tests.Shared.TempFolder();
        var path = Path.Combine(folder.Path, "tokenizer.json");
        File.WriteAllText(path, "{\"model\": {\"type\": \"WordPiece\", \"vocab\": {}}}");
        var notSupported = Assert.Throws<NotSupportedException>(() => HfTokenizer.FromPretrained(folder.Path));
        Assert.Contains(path, notSupported.Message, StringComparison.Ordinal);
        Assert.Contains("WordPiece", notSupported.Message, StringComparison.Ordinal);

        File.WriteAllText(path, "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}, \"pre_tokenizer\": {\"type\": \"Metaspace\"}}");
        notSupported = Assert.Throws<NotSupportedException>(() => HfTokenizer.FromPretrained(folder.Path));
        Assert.Contains("tokenizer.model", notSupported.Message, StringComparison.Ordinal);

        File.WriteAllText(path, "{\"model\": ");
        Assert.StartsWith(path, Assert.Throws<InvalidDataException>(() => HfTokenizer.FromPretrained(folder.Path)).Message, StringComparison.Ordinal);

        File.WriteAllText(path, "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}, \"pre_tokenizer\": {\"pattern\": 1}}");
        Assert.StartsWith(path + ": unexpected tokenizer.json structure", Assert.Throws<InvalidDataException>(() => HfTokenizer.FromPretrained(folder.Path)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void FromPretrained_SpecialTokenNotInVocab_Throws()
    {
        using var folder = new Distill.Tests.Shared.TempFolder();
        BundledData.WriteTokenizer(BundledTokenizer.Bytes, folder.Path);
        File.WriteAllText(Path.Combine(folder.Path, "tokenizer_config.json"), "{\"eos_token\": {\"content\": \"</s>\"}}");
        var ex = Assert.Throws<InvalidDataException>(() => HfTokenizer.FromPretrained(folder.Path));
        Assert.Contains("eos_token '</s>'", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void FromPretrained_ConfigVocabSize_SmallerThrowsLargerWarns()
    {
        using var folder = new Distill.Tests.Shared.TempFolder();
        BundledData.WriteTokenizer(BundledTokenizer.Bytes, folder.Path);
        var config = Path.Combine(folder.Path, "config.json");
        File.WriteAllText(config, "{\"vocab_size\": 200}");
        var ex = Assert.Throws<InvalidDataException>(() => HfTokenizer.FromPretrained(folder.Path));
        Assert.Contains("vocab_size 200 is smaller than the tokenizer's 257 ids", ex.Message, StringComparison.Ordinal);

        File.WriteAllText(config, "{\"vocab_size\": \"many\"}");
        Assert.Contains("'vocab_size' is missing or not an integer", Assert.Throws<InvalidDataException>(() => HfTokenizer.FromPretrained(folder.Path)).Message, StringComparison.Ordinal);

        File.WriteAllText(config, "{\"vocab_size\": 320}");
        var logger = new ListLogger();
        var tokenizer = HfTokenizer.FromPretrained(folder.Path, logger);
        Assert.Equal(257, tokenizer.VocabSize);
        Assert.Contains(logger.Messages, m => m.Level == LogLevel.Warning && m.Text.Contains("vocab_size 320 exceeds", StringComparison.Ordinal));
    }

    [Fact]
    public void Encode_AddBosTokenAndTemplateProcessing_AddSpecials()
    {
        using var folder = new Distill.Tests.Shared.TempFolder();
        BundledData.WriteTokenizer(BundledTokenizer.Bytes, folder.Path);
        File.WriteAllText(Path.Combine(folder.Path, "tokenizer_config.json"), "{\"bos_token\": \"<|endoftext|>\", \"eos_token\": \"<|endoftext|>\", \"add_bos_token\": true}");
        var withBos = HfTokenizer.FromPretrained(folder.Path);
        var encoded = withBos.Encode("ab", addSpecialTokens: true);
        Assert.Equal([256, 97, 98], encoded.Ids);
        Assert.Equal([new TokenSpan(0, 0), new TokenSpan(0, 1), new TokenSpan(1, 2)], encoded.Offsets);
        Assert.Equal([97, 98], withBos.Encode("ab", addSpecialTokens: false).Ids);

        // Llama-3 style: a TemplateProcessing post-processor that puts the BOS before $A.
        var json = JsonNodeWithTemplate(File.ReadAllText(Path.Combine(folder.Path, "tokenizer.json")));
        File.WriteAllText(Path.Combine(folder.Path, "tokenizer.json"), json);
        File.WriteAllText(Path.Combine(folder.Path, "tokenizer_config.json"), "{\"bos_token\": \"<|endoftext|>\"}");
        Assert.Equal([256, 97, 98], HfTokenizer.FromPretrained(folder.Path).Encode("ab", addSpecialTokens: true).Ids);
    }

    [Fact]
    public void FromPretrained_VocabJsonAndMergesTxt_MatchesTokenizerJson()
    {
        using var folder = new Distill.Tests.Shared.TempFolder();
        var reference = BundledData.TokenizerB();
        using var doc = JsonDocument.Parse(BundledData.ReadResource("tokenizer-bpe.json"));
        var model = doc.RootElement.GetProperty("model");
        File.WriteAllText(Path.Combine(folder.Path, "vocab.json"), model.GetProperty("vocab").GetRawText());
        File.WriteAllLines(Path.Combine(folder.Path, "merges.txt"), ["#version: 0.2", .. model.GetProperty("merges").EnumerateArray().Select(m => m[0].GetString() + " " + m[1].GetString())]);
        var slow = HfTokenizer.FromPretrained(folder.Path);
        Assert.Equal(reference.VocabSize, slow.VocabSize);
        Assert.Equal(511, slow.EosTokenId); // GPT2Tokenizer default: <|endoftext|> is BOS, EOS and UNK
        foreach (var e in BundledData.Load(BundledSplit.Dev).Take(50))
        {
            var text = PromptTemplates.Compact(e.Instruction, e.Input) + " " + e.Output + "<|endoftext|>";
            Assert.Equal(reference.Encode(text, false).Ids, slow.Encode(text, false).Ids);
        }
    }

    [Fact]
    public void FromPretrained_SentencePieceModel_EncodesWithDummyPrefixAndBos()
    {
        using var folder = new Distill.Tests.Shared.TempFolder();
        File.WriteAllBytes(Path.Combine(folder.Path, "tokenizer.model"), SentencePieceModelBuilder.Build(TinySentencePiece));
        var sp = HfTokenizer.FromPretrained(folder.Path);
        Assert.Equal(TokenizerKind.SentencePiece, sp.Kind);
        Assert.Equal("▁", sp.SpaceMarker);
        Assert.Equal(21, sp.VocabSize);
        Assert.Equal(1, sp.BosTokenId);
        Assert.Equal(2, sp.EosTokenId);
        Assert.Equal(0, sp.UnkTokenId);

        // "hello world" → normalised "▁hello▁world" → [▁hello (7), ▁world (12)]; LlamaTokenizer adds BOS by default.
        var encoded = sp.Encode("hello world", addSpecialTokens: true);
        Assert.Equal([1, 7, 12], encoded.Ids);
        Assert.Equal(["<s>", "▁hello", "▁world"], sp.ConvertIdsToTokens(encoded.Ids));
        Assert.Equal(new TokenSpan(0, 5), encoded.Offsets[1]);
        Assert.Equal("hello world", sp.Decode(encoded.Ids, skipSpecialTokens: true));
        Assert.Equal([1, 7, 12, 2], sp.Encode("hello world</s>", addSpecialTokens: true).Ids);
        Assert.True(sp.IsSpecial(2));
    }

    /// <summary>A tiny SentencePiece BPE vocabulary: SentencePiece merges the adjacent pair whose concatenation has the highest score.</summary>
    internal static readonly (string Piece, float Score, int Type)[] TinySentencePiece =
    [
        ("<unk>", 0, SentencePieceModelBuilder.Unknown), ("<s>", 0, SentencePieceModelBuilder.Control), ("</s>", 0, SentencePieceModelBuilder.Control),
        ("ll", -1, 1), ("▁h", -2, 1), ("▁he", -3, 1), ("▁hell", -4, 1), ("▁hello", -5, 1),
        ("▁w", -6, 1), ("or", -7, 1), ("▁wor", -8, 1), ("ld", -9, 1), ("▁world", -10, 1),
        ("▁", -11, 1), ("h", -12, 1), ("e", -13, 1), ("l", -14, 1), ("o", -15, 1), ("w", -16, 1), ("r", -17, 1), ("d", -18, 1),
    ];

    private static string JsonNodeWithTemplate(string tokenizerJson)
    {
        var node = System.Text.Json.Nodes.JsonNode.Parse(tokenizerJson)!;
        node["post_processor"] = System.Text.Json.Nodes.JsonNode.Parse("""
            {"type": "Sequence", "processors": [
              {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": true},
              {"type": "TemplateProcessing",
               "single": [{"SpecialToken": {"id": "<|endoftext|>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
               "pair": [],
               "special_tokens": {"<|endoftext|>": {"id": "<|endoftext|>", "ids": [256], "tokens": ["<|endoftext|>"]}}}]}
            """);
        return node.ToJsonString();
    }

    private sealed class ListLogger : ILogger
    {
        public List<(LogLevel Level, string Text)> Messages { get; } = [];

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            Messages.Add((logLevel, formatter(state, exception)));
    }
}
