// Cross-tokenizer distillation on the bundled data, in the regime users distil in: a competent teacher on another
// tokenizer (a 4×128 GPT-2 on the bundled BPE, shipped under samples/teachers/bpe-4x128), a small labelled set, and many
// unlabelled prompts that the teacher answers (SeqKD). A 2×64 GPT-2 student on the bundled byte tokenizer is trained
// with SFT (labels only), SeqKD (CE on labels + teacher answers), ULD, ULD-DSKD, MinED and DSKD-CMA (each on labels +
// teacher answers, with the objective's official CE weighting), for several seeds; the table (EM and ROUGE-L on the 200
// test rows, mean ± std over seeds, training time) is printed and written to the run folder as markdown and JSON.
//
// Usage:
//   dotnet run -c Release --project samples/Distill.CrossTokenizer                     # the comparison (default settings)
//   dotnet run -c Release --project samples/Distill.CrossTokenizer -- --help           # every option
//   dotnet run -c Release --project samples/Distill.CrossTokenizer -- train-teacher    # regenerate the shipped teacher
//   dotnet run -c Release --project samples/Distill.CrossTokenizer -- merge --parts A,B,C --output D   # runs split by seeds → one table
using Distill.CrossTokenizer;
using Distill.Runtime;

var (command, options) = CommandLine.Parse(args);
if (options.ContainsKey("help"))
{
    Console.WriteLine(CommandLine.Help);
    return 0;
}

DistillRuntime.EnsureNativeRuntime();
TorchSharp.torch.set_num_threads(1);   // tiny models: one thread costs less than OpenMP synchronisation on a busy box
using var cancel = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true;
    cancel.Cancel();
};

try
{
    if (command == "train-teacher")
    {
        var defaults = new TeacherSettings();
        var settings = new TeacherSettings
        {
            OutputDirectory = CommandLine.Text(options, "output", defaults.OutputDirectory),
            Layers = CommandLine.Int(options, "layers", defaults.Layers),
            Hidden = CommandLine.Int(options, "hidden", defaults.Hidden),
            Steps = CommandLine.Int(options, "steps", defaults.Steps),
            BatchSize = CommandLine.Int(options, "batch-size", defaults.BatchSize),
            LearningRate = CommandLine.Double(options, "lr", defaults.LearningRate),
            Seed = CommandLine.Int(options, "seed", defaults.Seed),
            Tasks = CommandLine.List(options, "tasks") is { } t ? Tasks.Parse(t) : defaults.Tasks,
        };
        CommandLine.RejectUnknown(options);
        var dir = TeacherTraining.Run(settings, Console.WriteLine, cancel.Token);
        Console.WriteLine($"teacher written to {dir}");
        return 0;
    }

    if (command == "merge")
    {
        var parts = CommandLine.List(options, "parts") ?? throw new ArgumentException("merge needs --parts DIR1,DIR2,...");
        var output = CommandLine.Text(options, "output", Path.Combine("runs", "cross-tokenizer"));
        CommandLine.RejectUnknown(options);
        var merged = ReportMerge.Merge([.. parts.Select(ReportMerge.Read)]);
        Directory.CreateDirectory(output);
        merged.Write(output);
        Console.WriteLine(merged.ToMarkdown());
        return 0;
    }

    return CrossTokenizerCommand.Run(options, cancel.Token);
}
catch (ArgumentException e)
{
    Console.Error.WriteLine(e.Message);
    return 2;
}
