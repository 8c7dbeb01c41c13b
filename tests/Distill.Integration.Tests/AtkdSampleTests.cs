using System.Text.Json;
using Distill.Atkd;
using Distill.Data.Synthesis;
using Distill.Tests.Shared;
using Distill.Training.Sources;

namespace Distill.Integration.Tests;

[Collection("Sequential")]
public class AtkdSampleTests
{
    /// <summary>
    /// The ATKD sample at smoke size (a 1-layer teacher trained for one step, every source, one seed, a few steps): the
    /// teacher-answer file is a valid SeqKD file, every source gets a row, the generating sources generated, and the table is
    /// written. No margin is asserted; the measured numbers are in the README.
    /// </summary>
    [Fact]
    public void Run_SmokeSize_WritesTheTableWithEverySource()
    {
        using var tmp = new TempFolder();
        var settings = new AtkdSettings
        {
            OutputDirectory = tmp.Path,
            UseShippedTeacher = false,
            TeacherLayers = 1,
            TeacherHidden = 32,
            TeacherSteps = 1, // nearly random: its answers are non-empty (they run to the token limit)
            StudentLayers = 1,
            StudentHidden = 32,
            Seeds = [1],
            TrainExamples = 24,
            EvalExamples = 6,
            Steps = 3,
            BatchSize = 4,
            MaxNewTokens = 6,
        };
        var phases = new HashSet<string>();
        var report = new AtkdComparison(settings) { OnProgress = p => phases.Add(p.Phase) }.Run();

        var sources = Enum.GetValues<AtkdSampleSource>().Select(AtkdSampleSourceNames.ToName).ToList();
        Assert.Equal([AtkdComparison.TeacherRow, .. sources], report.Rows.Select(r => r.Source));
        Assert.Equal(6, report.TestExamples);
        Assert.All(report.Rows, r =>
        {
            Assert.InRange(r.ExactMatch.Mean, 0, 100);
            Assert.Single(r.ExactMatch.PerSeed);
            Assert.True(double.IsFinite(r.AnswerLoss.Mean) && r.AnswerLoss.Mean > 0);
        });
        Assert.All(report.Rows.Skip(1), r => Assert.InRange(r.Agreement!.Mean, 0, 100));
        Assert.Equal(0, report.Rows.Single(r => r.Source == "gt").GeneratedBatches);
        Assert.Equal(0, report.Rows.Single(r => r.Source == "teacher").GeneratedBatches);
        Assert.Equal(100, report.Rows.Single(r => r.Source == "student").GeneratedBatches);
        Assert.Equal(100, report.Rows.Single(r => r.Source == "mix_token").GeneratedBatches);

        var answers = SeqKdDataset.Read(report.TeacherAnswersFile);
        Assert.Equal(24, answers.Manifest.Prompts);
        Assert.Equal(report.TeacherAnswers, answers.Records.Count);

        var markdown = File.ReadAllLines(Path.Combine(tmp.Path, AtkdReport.MarkdownFile));
        Assert.All(sources, s => Assert.Single(markdown, l => l.StartsWith($"| {s} |", StringComparison.Ordinal)));
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(tmp.Path, AtkdReport.JsonFile)));
        Assert.Equal(7, json.RootElement.GetProperty("rows").GetArrayLength());
        Assert.Contains(phases, p => p.StartsWith("mix_token, seed 1", StringComparison.Ordinal));
    }
}
