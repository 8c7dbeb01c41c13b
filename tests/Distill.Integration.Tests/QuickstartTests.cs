using Distill.Quickstart;
using Distill.Tests.Shared;
using Distill.Training;

namespace Distill.Integration.Tests;

public class QuickstartTests
{
    /// <summary>
    /// A shortened quickstart, end to end on the bundled data: a tiny teacher trained from scratch, a tinier student distilled
    /// with forward KL. The distilled student must beat its untrained self on the held-out answer loss, the teacher KL and the
    /// top-1 agreement with the teacher.
    /// </summary>
    [Fact]
    public void Run_ShortenedQuickstart_DistilledStudentImproves()
    {
        using var tmp = new TempFolder();
        var settings = new QuickstartSettings
        {
            OutputDirectory = tmp.Path,
            TeacherLayers = 2,
            TeacherHidden = 64,
            StudentLayers = 1,
            StudentHidden = 32,
            TeacherSteps = 150,
            Steps = 60,
            BatchSize = 16,
            EvalExamples = 40,
            DevExamples = 20,
            MaxNewTokens = 8,
            SftBaseline = false,
        };
        var phases = new HashSet<string>();
        var report = new QuickstartPipeline(settings) { OnProgress = p => phases.Add(p.Phase) }.Run();

        var before = report[QuickstartPipeline.StudentBeforeRow];
        var after = report[QuickstartPipeline.DistilledRow];
        var teacher = report[QuickstartPipeline.TeacherRow];
        Assert.False(report.TeacherFromCache);
        Assert.True(after.TestLoss < before.TestLoss - 0.5, $"answer loss {before.TestLoss:F3} → {after.TestLoss:F3}");
        Assert.True(after.MeanKl < before.MeanKl, $"KL(teacher‖student) {before.MeanKl:F3} → {after.MeanKl:F3}");
        Assert.True(after.Top1Agreement > before.Top1Agreement, $"top-1 agreement {before.Top1Agreement:P1} → {after.Top1Agreement:P1}");
        // Generation metrics of a 150-step teacher are near zero, so they may not move in a shortened run; they must not get worse.
        Assert.True(after.RougeL >= before.RougeL, $"ROUGE-L {before.RougeL:F1} → {after.RougeL:F1}");
        Assert.True(teacher.TestLoss < before.TestLoss);

        // Artifacts: the cached teacher is an HF folder with its tokenizer, the student checkpoint is an HF folder, logs exist.
        foreach (var file in new[] { "config.json", "model.safetensors", "tokenizer.json" })
        {
            Assert.True(File.Exists(Path.Combine(report.TeacherDirectory, file)), file);
        }

        Assert.True(File.Exists(Path.Combine(report.DistilledCheckpoint, CheckpointLayout.StudentFolder, "model.safetensors")));
        Assert.True(File.Exists(Path.Combine(report.OutputDirectory, "distill", "metrics.jsonl")));
        Assert.All(report.TensorBoardDirectories, d => Assert.NotEmpty(Directory.GetFiles(d, "events.out.tfevents.*")));
        Assert.Contains(phases, p => p.StartsWith("distilling", StringComparison.Ordinal));

        // A second run finds the cached teacher.
        var again = new QuickstartPipeline(settings with { Steps = 2, DevExamples = 0 }).Run();
        Assert.True(again.TeacherFromCache);
        Assert.Equal(teacher.TestLoss, again[QuickstartPipeline.TeacherRow].TestLoss, 6);
    }
}
