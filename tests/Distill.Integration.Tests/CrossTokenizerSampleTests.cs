using System.Text.Json;
using Distill.CrossTokenizer;
using Distill.Tests.Shared;

namespace Distill.Integration.Tests;

public class CrossTokenizerSampleTests
{
    /// <summary>
    /// The cross-tokenizer sample at smoke size, end to end: train-teacher writes a BPE teacher folder, the comparison
    /// answers the unlabelled prompts with it (SeqKD file cached by hash), trains every method for two seeds and writes the
    /// table (markdown + JSON) with every row. No margin is asserted: the measured numbers belong to the README.
    /// </summary>
    [Fact]
    public void Run_SmokeSize_WritesTableWithEveryRow()
    {
        using var tmp = new TempFolder();
        var teacherDir = TeacherTraining.Run(new TeacherSettings
        {
            OutputDirectory = Path.Combine(tmp.Path, "teacher"),
            WorkDirectory = Path.Combine(tmp.Path, "teacher-training"),
            Layers = 1,
            Hidden = 32,
            Steps = 5,
            BatchSize = 8,
        }, _ => { });
        foreach (var file in new[] { "config.json", "model.safetensors", "tokenizer.json", TeacherTraining.CardFile })
        {
            Assert.True(File.Exists(Path.Combine(teacherDir, file)), file);
        }

        Assert.False(Directory.Exists(Path.Combine(tmp.Path, "teacher-training")));

        var settings = new CrossTokenizerSettings
        {
            TeacherDirectory = teacherDir,
            OutputDirectory = Path.Combine(tmp.Path, "run"),
            Seeds = [1, 2],
            Labelled = 12,
            Prompts = 20,
            Steps = 2,
            BatchSize = 4,
            StudentLayers = 1,
            StudentHidden = 32,
            EvalExamples = 6,
        };
        var lines = new List<string>();
        var report = new CrossTokenizerPipeline(settings, lines.Add).Run();

        string[] expected = [CrossTokenizerPipeline.TeacherRow, CrossTokenizerPipeline.StudentBeforeRow, .. CrossTokenizerSettings.AllMethods];
        Assert.Equal(expected, report.Rows.Select(r => r.Method));
        Assert.All(report.Rows.Skip(1), r => Assert.Equal(2, r.ExactMatch.PerSeed.Count));
        Assert.All(report.Rows.Skip(2), r => Assert.True(r.TrainSeconds.Mean > 0, r.Method));
        Assert.Equal(20, report.TeacherAnswers.Generated);
        Assert.False(report.TeacherAnswers.FromCache);
        Assert.True(File.Exists(Path.Combine(settings.OutputDirectory, report.TeacherAnswers.CacheFile)));

        var markdown = File.ReadAllText(Path.Combine(settings.OutputDirectory, CrossTokenizerReport.MarkdownFile));
        Assert.All(expected, row => Assert.Contains($"| {row} |", markdown, StringComparison.Ordinal));
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(settings.OutputDirectory, CrossTokenizerReport.JsonFile)));
        Assert.Equal(expected, json.RootElement.GetProperty("rows").EnumerateArray().Select(r => r.GetProperty("method").GetString()));

        // A run of the same comparison with another seed merges with the first into one table over the three seeds.
        var third = new CrossTokenizerPipeline(settings with { Seeds = [3], OutputDirectory = Path.Combine(tmp.Path, "run3") }).Run();
        var merged = ReportMerge.Merge([ReportMerge.Read(settings.OutputDirectory), ReportMerge.Read(third.Settings.OutputDirectory)]);
        Assert.Equal([1, 2, 3], merged.Settings.Seeds);
        Assert.Equal(expected, merged.Rows.Select(r => r.Method));
        Assert.All(merged.Rows.Skip(1), r => Assert.Equal(3, r.ExactMatch.PerSeed.Count));
        var sft = merged["sft"];
        Assert.Equal(report["sft"].ExactMatch.PerSeed.Append(third["sft"].ExactMatch.PerSeed[0]), sft.ExactMatch.PerSeed);
        Assert.Equal(sft.ExactMatch.PerSeed.Average(), sft.ExactMatch.Mean, 9);
        Assert.Throws<ArgumentException>(() => ReportMerge.Merge([report, report]));   // a repeated seed

        // A second run with the same teacher and prompts reuses the teacher answers.
        var again = new CrossTokenizerPipeline(settings with { Seeds = [1], Methods = ["sft"], Steps = 1 }).Run();
        Assert.True(again.TeacherAnswers.FromCache);
        Assert.Equal(report.TeacherAnswers.CacheFile, again.TeacherAnswers.CacheFile);
    }
}
