using Distill.Eval.Metrics;

namespace Distill.Eval.Tests.Metrics;

public sealed class Gsm8kTests
{
    [Fact]
    public void SdftRule_GoldenCases_MatchReferenceScript()
    {
        // fixtures/gsm8k_sdft.json: find_last_integer / check_math as in SDFT eval/utils.py + eval_math.py.
        using var doc = Fixtures.Load("gsm8k_sdft.json");
        foreach (var c in doc.RootElement.EnumerateArray())
        {
            var label = c.GetProperty("label").GetString()!;
            var predict = c.GetProperty("predict").GetString()!;
            Assert.Equal(c.GetProperty("label_integer").GetString(), Gsm8k.FindLastInteger(label));
            Assert.Equal(c.GetProperty("predict_integer").GetString(), Gsm8k.FindLastInteger(predict.Trim()));
            Assert.Equal(c.GetProperty("correct").GetBoolean(), Gsm8k.IsCorrect(predict, label, Gsm8kAnswerRule.SdftFindLastInteger));
        }
    }

    [Theory]
    [InlineData("16 - 3 - 4 = 9 eggs; 9 * 2 = 18 dollars.", "Janet ... = $18.\n#### 18", true)]
    [InlineData("She pays 1,200 dollars.", "#### 1,200", true)]
    [InlineData("So 18.0", "#### 18", true)]
    [InlineData("The answer is 18. Then 5 more checks.", "#### 18", false)]
    [InlineData("#### 18\nExtra line 7", "#### 18", true)]
    [InlineData("-5 degrees", "#### -5", true)]
    [InlineData("no idea", "#### 3", false)]
    [InlineData("The answer is 3", "3", true)]
    [InlineData("$18", "#### $18 dollars", true)]
    [InlineData("yes", "#### yes", false)]
    public void FinalNumberRule_Cases_MatchHandDerivation(string prediction, string reference, bool expected) =>
        Assert.Equal(expected, Gsm8k.IsCorrect(prediction, reference));

    [Theory]
    [InlineData("Natalia sold 48/2 = 24 clips in May.\n#### 72", "72")]
    [InlineData("#### 1,200 dollars", "1200")]
    [InlineData("#### yes", "yes")]
    [InlineData("The answer is 5.", "5")]
    [InlineData("no answer", null)]
    public void ExtractReferenceAnswer_Cases_ReturnsFinalAnswer(string reference, string? expected) =>
        Assert.Equal(expected, Gsm8k.ExtractReferenceAnswer(reference));

    [Fact]
    public void Metric_AnyReferenceMatches_ScoresOne() =>
        Assert.Equal(1, new Gsm8kAccuracyMetric().Score("it is 4", ["#### 5", "#### 4"]));
}
