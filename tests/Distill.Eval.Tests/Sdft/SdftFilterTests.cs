using Distill.Data.Synthesis;
using Distill.Eval.Metrics;

namespace Distill.Eval.Tests.Sdft;

public class SdftFilterTests
{
    // fixtures/sdft_filters_golden.json is written by fixtures/sdft_filters_reference.py, which runs the official
    // sail-sg/sdft eval/*.py functions (both branches) on the cases listed there.
    private static readonly System.Text.Json.JsonDocument Golden = Fixtures.Load("sdft_filters_golden.json");

    private static IEnumerable<System.Text.Json.JsonElement> Cases(string name) => Golden.RootElement.GetProperty(name).EnumerateArray();

    [Fact]
    public void FindLastInteger_MatchesTheOfficialCode()
    {
        foreach (var c in Cases("integers"))
        {
            Assert.Equal(c.GetProperty("expected").GetString(), Gsm8k.FindLastInteger(c.GetProperty("text").GetString()!));
        }
    }

    [Fact]
    public void CheckMath_MatchesTheOfficialCode()
    {
        foreach (var c in Cases("math"))
        {
            var (label, predict) = (c.GetProperty("label").GetString()!, c.GetProperty("predict").GetString()!);
            Assert.True(c.GetProperty("expected").GetBoolean() == SdftAnswerChecks.CheckMath(label, predict), $"check_math({label}, {predict})");
        }
    }

    [Fact]
    public void CheckOpenFunction_MatchesBothBranches()
    {
        foreach (var c in Cases("openfunction"))
        {
            var (label, predict) = (c.GetProperty("label").GetString()!, c.GetProperty("predict").GetString()!);
            Assert.True(c.GetProperty("reproduce").GetDouble() == SdftAnswerChecks.CheckOpenFunction(label, predict, SdftBranch.Reproduce), $"reproduce: {label} vs {predict}");
            Assert.True(c.GetProperty("main").GetDouble() == SdftAnswerChecks.CheckOpenFunction(label, predict, SdftBranch.Main), $"main: {label} vs {predict}");
        }
    }

    [Fact]
    public void CheckMagicoder_MatchesTheOfficialCode()
    {
        foreach (var c in Cases("code"))
        {
            var predict = c.GetProperty("predict").GetString()!;
            Assert.True(c.GetProperty("expected").GetBoolean() == SdftAnswerChecks.CheckMagicoder(predict), predict);
        }
    }

    [Fact]
    public void Verify_MatchesTheOfficialCode()
    {
        foreach (var c in Cases("verify"))
        {
            var predict = c.GetProperty("predict").GetString()!;
            Assert.True(c.GetProperty("expected").GetBoolean() == SdftFilter.Verify(predict), predict);
        }
    }

    [Fact]
    public void CheckOpenFunction_ReferenceNotACall_Throws()
    {
        var ex = Assert.Throws<InvalidDataException>(() => SdftAnswerChecks.CheckOpenFunction("just prose", "f()"));
        Assert.Contains("just prose", ex.Message, StringComparison.Ordinal);
    }

    public static TheoryData<string, string, string, bool, SdftReason> Reasons() => new()
    {
        // task, reference, rewrite, truncated → reason
        { "math", "The answer is 72.", "48 + 24 = 72. The answer is 72.", false, SdftReason.Kept },
        { "math", "The answer is 1,234.", "In total 1234 apples.", false, SdftReason.Kept },               // thousands comma
        { "math", "The answer is -8.", "It drops to -8 degrees.", false, SdftReason.Kept },                // negative number
        { "math", "The answer is -8.", "It drops by 8 degrees.", false, SdftReason.WrongAnswer },          // sign lost
        { "math", "The answer is 72.", "First 72, then 80.", false, SdftReason.WrongAnswer },              // several numbers: the last counts
        { "math", "The answer is 72.", "Seventy-two.", false, SdftReason.WrongAnswer },                    // no number
        { "math", "The answer is 72.", "Compare with the reference answer: 72.", false, SdftReason.BadWord },
        { "math", "The answer is 72.", "", false, SdftReason.Empty },
        { "math", "The answer is 72.", "The answer is 72", true, SdftReason.Truncated },
        { "general", "Paris.", "Your turn: what is the capital?", false, SdftReason.BadWord },
        { "general", "Paris.", "   ", false, SdftReason.Empty },
        { "general", "Paris.", "The capital of France is Paris.", false, SdftReason.Kept },
        { "code", "x", "Here is the code:\n```python\nprint(1)\n```", false, SdftReason.Kept },
        { "code", "x", "Sure:\n```python\nprint(1)\n```", false, SdftReason.WrongFormat },
        { "openfunction", "math.add(a=1, b=2)", "math.add(a=1, b=2)", false, SdftReason.Kept },
        { "openfunction", "math.add(a=1, b=2)", "add(1, 2)", false, SdftReason.Kept },                     // reproduce's 0.5 credit qualifies
        { "openfunction", "math.add(a=1, b=2)", "I cannot call it.", false, SdftReason.WrongFormat },
    };

    [Theory]
    [MemberData(nameof(Reasons))]
    public void Classify_GivesEachReason(string task, string reference, string rewrite, bool truncated, SdftReason expected)
    {
        var options = new SdftOptions { Task = task };
        var kind = options.ResolveTask().Kind;
        var filter = new SdftFilter(options, kind, SdftAnswerChecks.For(kind, options.Branch));
        Assert.Equal(expected, filter.Classify(reference, rewrite, truncated));
    }

    [Fact]
    public void Classify_OfficialBehaviour_KeepsEmptyAndTruncatedGeneralRewrites()
    {
        var options = new SdftOptions { RejectEmpty = false, RejectTruncated = false };
        var filter = new SdftFilter(options, SdftTaskKind.General, null);
        Assert.Equal(SdftReason.Kept, filter.Classify("ref", "", truncated: false));
        Assert.Equal(SdftReason.Kept, filter.Classify("ref", "cut off mid", truncated: true));
    }

    [Fact]
    public void Classify_MainBranch_NoPartialCreditForOpenFunction()
    {
        var options = new SdftOptions { Task = "openfunction", Branch = SdftBranch.Main };
        var filter = new SdftFilter(options, SdftTaskKind.OpenFunction, SdftAnswerChecks.For(SdftTaskKind.OpenFunction, SdftBranch.Main));
        Assert.Equal(SdftReason.WrongFormat, filter.Classify("math.add(a=1, b=2)", "add(1, 2)", truncated: false));
    }
}
