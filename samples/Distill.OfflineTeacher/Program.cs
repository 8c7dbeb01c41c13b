// Offline teacher: cache a teacher's top-k log-probs once (Arrow IPC + JSON manifest), train a student from the cache with
// no teacher in the process, and compare with online distillation (teacher forward every step): exact match on the bundled
// test split, step time, peak RSS and the cache's size on disk per token.
//
// Usage: dotnet run -c Release --project samples/Distill.OfflineTeacher -- [--teacher <HF folder>] [--k 64,16] [--steps 150]
//        [--teacher-steps 400] [--eval 100] [--batch 16] [--threads 1] [--output runs/offline-teacher]
using Distill.OfflineTeacher;
using Distill.Runtime;
using Microsoft.Extensions.Logging;

OfflineTeacherSettings settings;
try
{
    settings = OfflineTeacherSettings.Parse(args);
}
catch (ArgumentException e)
{
    Console.Error.WriteLine(e.Message);
    return 2;
}

DistillRuntime.EnsureNativeRuntime();
using var loggers = LoggerFactory.Create(b => b.AddSimpleConsole(o => o.SingleLine = true).SetMinimumLevel(LogLevel.Warning));
var pipeline = new OfflineTeacherPipeline(settings, loggers) { OnProgress = line => Console.WriteLine($"[{DateTime.Now:HH:mm:ss}] {line}") };
var report = pipeline.Run();
Console.WriteLine();
Console.WriteLine($"teacher: {report.TeacherDirectory}{(report.TeacherTrainedHere ? " (trained by this sample)" : "")}; {report.ScoredTokens} answer tokens cached; {report.Steps} steps per student; {report.Elapsed.TotalSeconds:F0} s in all");
Console.WriteLine(report.ToMarkdown());
Console.WriteLine($"table written to {Path.Combine(settings.OutputDirectory, "results.md")}");
return 0;
