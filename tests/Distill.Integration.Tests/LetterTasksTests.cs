using Distill.Quickstart;

namespace Distill.Integration.Tests;

public class LetterTasksTests
{
    /// <summary>
    /// The quickstart's default data: 5 000 distinct rows, the same on every call (SplitMix64 written out in the generator), every
    /// answer right by construction (count = the input's length, first = its first letter), split 4 500 / 250 / 250 (every 20th row
    /// test, the next dev), with both families in the test split.
    /// </summary>
    [Fact]
    public void Default_IsDeterministic_Correct_AndSplitsTo250TestRows()
    {
        var rows = LetterTasks.Generate();
        Assert.Equal(LetterTasks.DefaultCount, rows.Count);
        Assert.Equal(rows.Select(r => (r.Instruction, r.Input, r.Output)), LetterTasks.Generate().Select(r => (r.Instruction, r.Input, r.Output)));
        Assert.Equal(rows.Count, rows.Select(r => (r.Instruction, r.Input)).Distinct().Count());
        Assert.All(rows, r =>
        {
            Assert.Matches("^[a-z]+$", r.Input);
            Assert.Equal(r.Task == "count" ? r.Input.Length.ToString(System.Globalization.CultureInfo.InvariantCulture) : r.Input[..1], r.Output);
        });
        Assert.NotEqual(rows.Select(r => r.Input), LetterTasks.Generate(seed: 8).Select(r => r.Input));

        var (train, dev, test) = QuickstartData.Load(new QuickstartSettings());
        Assert.Equal((4500, 250, 250), (train.Count, dev.Count, test.Count));
        var testTasks = rows.Where((_, i) => i % 20 == 0).GroupBy(r => r.Task).ToDictionary(g => g.Key!, g => g.Count());
        Assert.InRange(testTasks["count"], 100, 150);
        Assert.InRange(testTasks["first"], 100, 150);
    }

    /// <summary>Each built-in dataset loads its own shipped teacher; an unknown one is refused by name.</summary>
    [Fact]
    public void Dataset_PicksItsTeacher_AndUnknownIsRefused()
    {
        Assert.Equal("letters-4x128", new QuickstartSettings().DefaultTeacher);
        Assert.Equal("bytes-4x128", new QuickstartSettings { Dataset = QuickstartSettings.BundledDataset }.DefaultTeacher);
        Assert.Equal(41, QuickstartData.Load(new QuickstartSettings { Dataset = QuickstartSettings.BundledDataset }).Test.Count);
        Assert.Contains(new QuickstartSettings { Dataset = "lettres" }.Validate(), e => e.Contains("--dataset", StringComparison.Ordinal) && e.Contains("lettres", StringComparison.Ordinal));
    }
}
