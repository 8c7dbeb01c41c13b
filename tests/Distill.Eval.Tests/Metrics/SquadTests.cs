using Distill.Eval.Metrics;

namespace Distill.Eval.Tests.Metrics;

public sealed class SquadTests
{
    [Fact]
    public void Metrics_GoldenCases_MatchOfficialScript()
    {
        // fixtures/squad.json: normalize_answer / exact_match_score / f1_score of evaluate-v1.1.py run by Python 3.11,
        // and DSKD's exact match (articles kept), incl. unicode and whitespace edge cases.
        using var doc = Fixtures.Load("squad.json");
        foreach (var c in doc.RootElement.EnumerateArray())
        {
            var prediction = c.GetProperty("prediction").GetString()!;
            var truth = c.GetProperty("truth").GetString()!;
            Assert.Equal(c.GetProperty("normalized_prediction").GetString(), Squad.NormalizeAnswer(prediction));
            Assert.Equal(c.GetProperty("normalized_truth").GetString(), Squad.NormalizeAnswer(truth));
            Assert.Equal(c.GetProperty("exact_match").GetDouble(), Squad.ExactMatch(prediction, truth));
            Assert.Equal(c.GetProperty("f1").GetDouble(), Squad.F1(prediction, truth), 12);
            Assert.Equal(c.GetProperty("dskd_exact_match").GetDouble(), new DskdExactMatchMetric().Score(prediction, [truth]));
        }
    }

    [Fact]
    public void NormalizeAnswer_ATeam_RemovesPunctuationBeforeArticles() =>
        Assert.Equal("ateam", Squad.NormalizeAnswer("The A-Team"));

    [Fact]
    public void Metrics_BothEmptyAfterNormalisation_EmOneF1Zero()
    {
        Assert.Equal(1, Squad.ExactMatch("the", "a"));
        Assert.Equal(0, Squad.F1("the", "a"));
    }

    [Fact]
    public void F1_PartialOverlap_MatchesHandDerivation()
    {
        // prediction tokens [denver, broncos, team] vs truth [broncos]: shared 1, P = 1/3, R = 1, F1 = 2·(1/3)/(4/3) = 0.5.
        Assert.Equal(0.5, Squad.F1("the Denver Broncos team", "Broncos"), 12);
    }

    [Fact]
    public void Score_MultipleReferences_TakesBest()
    {
        Assert.Equal(1, new ExactMatchMetric().Score("Paris", ["London", "paris."]));
        // vs "Denver": shared 1, P = 1/2, R = 1/1, F1 = 2·(1/2)/(3/2) = 2/3; vs "Miami": 0.
        Assert.Equal(2.0 / 3.0, new SquadF1Metric().Score("Denver Broncos", ["Denver", "Miami"]), 12);
    }
}
