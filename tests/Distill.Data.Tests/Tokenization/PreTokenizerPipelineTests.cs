using System.Text.RegularExpressions;

namespace Distill.Data.Tests.Tokenization;

public sealed class PreTokenizerPipelineTests
{
    // The examples of Hugging Face tokenizers' SplitDelimiterBehavior documentation: "the-final--countdown" split on "-".
    [Theory]
    [InlineData("Removed", new[] { "the", "final", "countdown" })]
    [InlineData("Isolated", new[] { "the", "-", "final", "-", "-", "countdown" })]
    [InlineData("MergedWithPrevious", new[] { "the-", "final-", "-", "countdown" })]
    [InlineData("MergedWithNext", new[] { "the", "-final", "-", "-countdown" })]
    [InlineData("Contiguous", new[] { "the", "-", "final", "--", "countdown" })]
    public void Split_DelimiterBehaviours_MatchHfDocumentation(string behavior, string[] expected)
    {
        const string text = "the-final--countdown";
        var pipeline = new PreTokenizerPipeline([new SplitStage(new Regex("-"), Enum.Parse<SplitBehavior>(behavior))]);
        Assert.Equal(expected, pipeline.Split(text).Select(p => text.Substring(p.Offset, p.Length)));
    }

    [Fact]
    public void Split_Gpt2ThenIndividualDigits_SplitsNumbers()
    {
        const string text = "It's 2026 now";
        var pipeline = new PreTokenizerPipeline(
        [
            new SplitStage(new Regex(PreTokenizerPipeline.Gpt2Pattern), SplitBehavior.Isolated),
            new SplitStage(new Regex(@"\p{N}"), SplitBehavior.Isolated),
        ]);
        Assert.Equal(["It", "'s", " ", "2", "0", "2", "6", " now"], pipeline.Split(text).Select(p => text.Substring(p.Offset, p.Length)));
    }

    [Fact]
    public void Encode_AddedTokenWithStripFlags_AbsorbsWhitespace()
    {
        // A tokenizer.json whose added token <sep> has lstrip and rstrip: "a <sep> b" → a, <sep> (covering " <sep> "), b.
        var json = System.Text.Json.Nodes.JsonNode.Parse(BundledData.ReadResource("tokenizer-bytes.json"))!;
        json["added_tokens"]!.AsArray().Add(System.Text.Json.Nodes.JsonNode.Parse("{\"id\": 257, \"content\": \"<sep>\", \"lstrip\": true, \"rstrip\": true, \"special\": false}"));
        var tokenizer = HfTokenizer.FromJson(json.ToJsonString(), BundledData.TokenizerConfigJson, "test");
        var encoded = tokenizer.Encode("a <sep> b", addSpecialTokens: false);
        Assert.Equal([97, 257, 98], encoded.Ids);
        Assert.Equal(new TokenSpan(1, 8), encoded.Offsets[1]);
        Assert.False(tokenizer.IsSpecial(257));
        Assert.Equal("a<sep>b", tokenizer.Decode(encoded.Ids, skipSpecialTokens: true));
    }

    [Fact]
    public void Encode_NfcNormalizer_ComposesBeforeBpe()
    {
        // With an NFC normaliser, "e" + U+0301 encodes like the precomposed "é" (two UTF-8 bytes C3 A9 = ids 195, 169).
        var json = System.Text.Json.Nodes.JsonNode.Parse(BundledData.ReadResource("tokenizer-bytes.json"))!;
        json["normalizer"] = System.Text.Json.Nodes.JsonNode.Parse("{\"type\": \"Sequence\", \"normalizers\": [{\"type\": \"NFC\"}]}");
        var tokenizer = HfTokenizer.FromJson(json.ToJsonString(), null, "test");
        Assert.Equal([195, 169], tokenizer.Encode("e\u0301", addSpecialTokens: false).Ids);
        Assert.Equal([101, 204, 129], BundledData.TokenizerA().Encode("e\u0301", addSpecialTokens: false).Ids);
    }
}
