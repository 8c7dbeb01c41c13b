using Distill.Models;
using Distill.Quickstart;
using Distill.Tests.Shared;

namespace Distill.Integration.Tests;

public class QuickstartTests
{
    /// <summary>
    /// The quickstart at smoke size, end to end, from the teacher folder shipped with the sample (found next to the assembly, as
    /// the default run finds it): every row of the table is trained, scored and written. The headline margin is not asserted:
    /// it belongs to the README's measured numbers.
    /// </summary>
    [Fact]
    public void Run_SmokeSize_WritesEveryRow()
    {
        using var tmp = new TempFolder();
        var settings = new QuickstartSettings
        {
            OutputDirectory = tmp.Path,
            StudentLayers = 1,
            StudentHidden = 32,
            Steps = 4,
            BatchSize = 8,
            LabelledExamples = 16,
            UnlabelledPrompts = 24,
            Seeds = [1, 2],
            EvalExamples = 20,
            DevExamples = 10,
            DevEvaluations = 2,
            MaxNewTokens = 6,
        };
        var phases = new HashSet<string>();
        var report = new QuickstartPipeline(settings) { OnProgress = p => phases.Add(p.Phase) }.Run();

        Assert.True(File.Exists(Path.Combine(QuickstartPipeline.ShippedTeacherDirectory(), "model.safetensors")));
        Assert.Equal(Path.GetFullPath(QuickstartPipeline.ShippedTeacherDirectory()), report.TeacherDirectory);
        string[] expected = [QuickstartPipeline.TeacherRow, QuickstartPipeline.StudentBeforeRow, .. QuickstartMethods.All.Select(m => m.Key)];
        Assert.Equal(expected, report.Rows.Select(r => r.Key));
        Assert.All(report.Rows.Skip(1), r => Assert.Equal(2, r.ExactMatch.PerSeed.Count));
        Assert.All(report.Rows.Skip(2), r => Assert.True(r.Seconds.Mean > 0, r.Key));
        Assert.Equal(20, report.TestExamples);
        Assert.Equal(16, report.LabelledExamples);
        Assert.InRange(report.UnlabelledPrompts, 1, 24); // empty teacher answers are dropped
        Assert.Equal(16, report[QuickstartMethods.Sft.Key].TrainingExamples);
        Assert.Equal(16 + report.UnlabelledPrompts, report[QuickstartMethods.SeqKd.Key].TrainingExamples);
        Assert.Equal(100, report[QuickstartPipeline.TeacherRow].Agreement.Mean);

        // The table files: markdown with one line per row, JSON with every key.
        var markdown = File.ReadAllText(Path.Combine(tmp.Path, QuickstartReport.MarkdownFile));
        Assert.All(report.Rows, r => Assert.Contains($"| {r.Row} |", markdown, StringComparison.Ordinal));
        var json = File.ReadAllText(Path.Combine(tmp.Path, QuickstartReport.JsonFile));
        Assert.All(expected, k => Assert.Contains($"\"key\": \"{k}\"", json, StringComparison.Ordinal));
        Assert.True(File.Exists(report.TeacherAnswersFile));
        Assert.False(report.TeacherAnswersFromCache);
        Assert.Contains(phases, p => p.StartsWith("on-policy", StringComparison.Ordinal));

        // A second run reuses the cached teacher answers and trains the same SeqKD student (seeded, one thread).
        var again = new QuickstartPipeline(settings with { Methods = [QuickstartMethods.SeqKd.Key], Seeds = [1] }).Run();
        Assert.True(again.TeacherAnswersFromCache);
        Assert.Equal(report.TeacherAnswersFile, again.TeacherAnswersFile);
        Assert.Equal(report[QuickstartMethods.SeqKd.Key].AnswerLoss.PerSeed[0], again[QuickstartMethods.SeqKd.Key].AnswerLoss.PerSeed[0], 6);
    }

    /// <summary><c>train-teacher</c> at toy size writes an HF folder that <see cref="AutoCausalLM"/> loads, with its provenance.</summary>
    [Fact]
    public void TrainTeacher_ToySize_WritesLoadableFolder()
    {
        using var tmp = new TempFolder();
        var dir = Path.Combine(tmp.Path, "teacher");
        var (written, _, _) = TeacherTraining.Run(new TeacherTrainingSettings { OutputDirectory = dir, RunDirectory = Path.Combine(tmp.Path, "run"), Layers = 1, Hidden = 32, Steps = 3, BatchSize = 4 }, Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance, null, default);

        Assert.Equal(Path.GetFullPath(dir), written);
        foreach (var file in new[] { "config.json", "model.safetensors", "tokenizer.json", TeacherTraining.ProvenanceFile })
        {
            Assert.True(File.Exists(Path.Combine(dir, file)), file);
        }

        using var model = AutoCausalLM.FromPretrained(dir);
        Assert.Equal(1, model.Config.NumHiddenLayers);
        Assert.Empty(Directory.GetDirectories(tmp.Path, "teacher.tmp-*"));
    }
}
