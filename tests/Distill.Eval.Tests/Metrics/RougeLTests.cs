using System.Text.Json;
using Distill.Eval.Metrics;

namespace Distill.Eval.Tests.Metrics;

public sealed class RougeLTests
{
    [Fact]
    public void Score_GoldenCases_MatchRougeScore()
    {
        // fixtures/rouge_l.json: rouge_score's tokenize + _score_lcs re-run with the real NLTK stemmer
        // (empty prediction, punctuation only, stemming, unicode, repeated tokens, ...).
        using var doc = Fixtures.Load("rouge_l.json");
        foreach (var c in doc.RootElement.GetProperty("single").EnumerateArray())
        {
            var target = c.GetProperty("target").GetString()!;
            var prediction = c.GetProperty("prediction").GetString()!;
            Assert.Equal(Strings(c.GetProperty("target_tokens")), RougeL.Tokenize(target));
            Assert.Equal(Strings(c.GetProperty("prediction_tokens")), RougeL.Tokenize(prediction));
            var score = RougeL.Score(target, prediction);
            Assert.Equal(c.GetProperty("precision").GetDouble(), score.Precision, 12);
            Assert.Equal(c.GetProperty("recall").GetDouble(), score.Recall, 12);
            Assert.Equal(c.GetProperty("fmeasure").GetDouble(), score.FMeasure, 12);
        }
    }

    [Fact]
    public void MaxFMeasure_GoldenMultiReference_MatchesMaxOverReferences()
    {
        using var doc = Fixtures.Load("rouge_l.json");
        foreach (var c in doc.RootElement.GetProperty("multi").EnumerateArray())
        {
            var references = Strings(c.GetProperty("references"));
            var actual = new RougeLMetric().Score(c.GetProperty("prediction").GetString()!, references);
            Assert.Equal(c.GetProperty("fmeasure").GetDouble(), actual, 12);
        }
    }

    [Fact]
    public void Score_RepeatedTokens_UsesLcsNotCounts()
    {
        // Hand derivation: target "a b a b" (4 tokens), prediction "b a" (2 tokens): LCS = 2 ("b a"),
        // P = 2/2 = 1, R = 2/4 = 0.5, F = 2·1·0.5/1.5 = 2/3.
        var score = RougeL.Score("a b a b", "b a");
        Assert.Equal(1.0, score.Precision, 12);
        Assert.Equal(0.5, score.Recall, 12);
        Assert.Equal(2.0 / 3.0, score.FMeasure, 12);
    }

    [Fact]
    public void Score_EmptyOrPunctuationOnlyPrediction_ReturnsZero()
    {
        Assert.Equal(new RougeScore(0, 0, 0), RougeL.Score("the reference", ""));
        Assert.Equal(new RougeScore(0, 0, 0), RougeL.Score("the reference", "?!... —"));
    }

    [Fact]
    public void Score_ArgumentOrder_TargetFirst()
    {
        // target 3 tokens, prediction 1 shared token: P = 1/1, R = 1/3.
        var score = RougeL.Score("one two three", "two");
        Assert.Equal(1.0, score.Precision, 12);
        Assert.Equal(1.0 / 3.0, score.Recall, 12);
    }

    [Fact]
    public void MaxFMeasure_NoReferences_ReturnsZero() => Assert.Equal(0, RougeL.MaxFMeasure("text", []));

    private static string[] Strings(JsonElement array) => [.. array.EnumerateArray().Select(e => e.GetString()!)];
}
