using System.Globalization;

namespace Distill.CrossTokenizer;

/// <summary>The default command: parse the options, run the comparison, print the table.</summary>
internal static class CrossTokenizerCommand
{
    public static int Run(Dictionary<string, string> options, CancellationToken cancellationToken)
    {
        var d = new CrossTokenizerSettings();
        var settings = new CrossTokenizerSettings
        {
            TeacherDirectory = options.ContainsKey("teacher") ? CommandLine.Text(options, "teacher", "") : null,
            OutputDirectory = CommandLine.Text(options, "output", d.OutputDirectory),
            Seeds = CommandLine.List(options, "seeds")?.Select(s => int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out var x) ? x : throw new ArgumentException($"--seeds expects integers, got '{s}'.")).ToList() ?? d.Seeds,
            Labelled = CommandLine.Int(options, "labelled", d.Labelled),
            Prompts = options.ContainsKey("prompts") ? CommandLine.Int(options, "prompts", 0) : null,
            Tasks = CommandLine.List(options, "tasks") is { } t ? Tasks.Parse(t) : d.Tasks,
            Steps = CommandLine.Int(options, "steps", d.Steps),
            BatchSize = CommandLine.Int(options, "batch-size", d.BatchSize),
            LearningRate = CommandLine.Double(options, "lr", d.LearningRate),
            StudentLayers = CommandLine.Int(options, "student-layers", d.StudentLayers),
            StudentHidden = CommandLine.Int(options, "student-hidden", d.StudentHidden),
            Methods = CommandLine.List(options, "methods") ?? d.Methods,
            Split = CommandLine.Text(options, "split", d.Split),
            EvalExamples = options.ContainsKey("eval-examples") ? CommandLine.Int(options, "eval-examples", 0) : null,
        };
        CommandLine.RejectUnknown(options);
        var report = new CrossTokenizerPipeline(settings, line => Console.WriteLine($"[{DateTime.Now:HH:mm:ss}] {line}")).Run(cancellationToken);
        Console.WriteLine();
        Console.WriteLine(report.ToMarkdown());
        Console.WriteLine($"Written to {Path.Combine(Path.GetFullPath(settings.OutputDirectory), CrossTokenizerReport.MarkdownFile)} and {CrossTokenizerReport.JsonFile}.");
        return 0;
    }
}
