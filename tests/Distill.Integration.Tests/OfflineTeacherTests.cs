using Distill.OfflineTeacher;
using Distill.Tests.Shared;

namespace Distill.Integration.Tests;

/// <summary>The offline-teacher sample at smoke size: a tiny teacher trained here, two caches, online vs cached students.</summary>
public class OfflineTeacherTests
{
    [Fact]
    public void Run_SmokeSize_TableHasEveryRowAndConsistentCacheSizes()
    {
        using var tmp = new TempFolder();
        var settings = new OfflineTeacherSettings
        {
            OutputDirectory = tmp.Path,
            TeacherPath = null,
            FindShippedTeacher = false, // a tiny teacher trained here, whatever the checkout ships
            K = [300, 16],   // 300 is capped at the bundled vocabulary (257)
            TeacherLayers = 2,
            TeacherHidden = 64,
            TeacherSteps = 20,
            StudentLayers = 1,
            StudentHidden = 32,
            Steps = 6,
            BatchSize = 8,
            EvalExamples = 8,
        };
        var lines = new List<string>();
        var report = new OfflineTeacherPipeline(settings) { OnProgress = lines.Add }.Run();

        Assert.Equal(
            [OfflineTeacherPipeline.TeacherRow, OfflineTeacherPipeline.OnlineRow, OfflineTeacherPipeline.CachedRow(257), OfflineTeacherPipeline.CachedRow(16)],
            report.Rows.Select(r => r.Run));
        Assert.True(report.ScoredTokens > 0);
        foreach (var k in new[] { 257, 16 })
        {
            var row = report[OfflineTeacherPipeline.CachedRow(k)];
            // Per scored token a chunk stores k ids and k log-probs (4 bytes each), the tail, the position and the row
            // (4 + 4 + 8 bytes): 8k + 16, plus Arrow framing, the index, the manifest and the sidecars.
            Assert.InRange(row.CacheBytesPerToken!.Value, (8 * k) + 16, (8 * k) + 16 + 400);
            Assert.Equal(row.CacheBytes!.Value / (double)report.ScoredTokens, row.CacheBytesPerToken.Value, 6);
            Assert.True(row.CacheWriteSeconds > 0);
            Assert.True(row.StepMs > 0 && row.PeakRssMb > 0);
            Assert.InRange(row.ExactMatch, 0, 100);
        }

        Assert.True(report[OfflineTeacherPipeline.OnlineRow].StepMs > 0);
        Assert.Null(report[OfflineTeacherPipeline.TeacherRow].StepMs);
        Assert.True(report.TeacherTrainedHere);
        var table = File.ReadAllText(Path.Combine(tmp.Path, "results.md"));
        Assert.Equal(report.ToMarkdown(), table);
        Assert.Contains("| cached k = 16 |", table, StringComparison.Ordinal);
        Assert.Contains(lines, l => l.StartsWith("caching the teacher's top-257", StringComparison.Ordinal));
    }
}
