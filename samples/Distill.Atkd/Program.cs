// Distill ATKD sample: which sequences should the ATKD objective train on? One teacher (--teacher, else the quickstart's
// shipped teacher, else a small one trained here once), its greedy answers to the training prompts written as a SeqKD file,
// then the same small student trained from each ATKD sample source (gt, teacher, student, mix_token, mix_request_teacher,
// mix_request_gt) under 3 seeds. Prints and writes the table (mean ± std over seeds) to the run folder.
using System.CommandLine;
using System.Globalization;
using Distill.Atkd;
using Distill.Training.Sources;
using Microsoft.Extensions.Logging;
using Spectre.Console;

var defaults = new AtkdSettings();
var teacher = new Option<string?>("--teacher") { Description = $"HF teacher folder (config.json, model.safetensors, tokenizer.json). Default: the bundled data's shipped teacher (samples/teachers/{AtkdSettings.ShippedTeacher}) if present, else a small teacher trained once and cached in the run folder." };
var sources = new Option<string[]>("--sources") { Description = "Sample sources to compare (gt teacher student mix_token mix_request_teacher mix_request_gt). Default: all.", AllowMultipleArgumentsPerToken = true };
var seeds = new Option<int[]>("--seeds") { Description = "Training seeds; the table reports mean ± std.", AllowMultipleArgumentsPerToken = true, DefaultValueFactory = _ => [.. defaults.Seeds] };
var trainExamples = new Option<int>("--train-examples") { Description = "Training prompts (the teacher answers each once).", DefaultValueFactory = _ => defaults.TrainExamples };
var evalExamples = new Option<int>("--eval-examples") { Description = "Test examples scored per model.", DefaultValueFactory = _ => defaults.EvalExamples };
var steps = new Option<int>("--steps") { Description = "Optimizer steps of every student run.", DefaultValueFactory = _ => defaults.Steps };
var batchSize = new Option<int>("--batch-size") { Description = "Micro-batch size.", DefaultValueFactory = _ => defaults.BatchSize };
var lr = new Option<double>("--lr") { Description = "Student peak learning rate.", DefaultValueFactory = _ => defaults.LearningRate };
var maxNewTokens = new Option<int>("--max-new-tokens") { Description = "Token limit of generated answers.", DefaultValueFactory = _ => defaults.MaxNewTokens };
var teacherSteps = new Option<int>("--teacher-steps") { Description = "Steps of the fallback teacher (only when no teacher folder is found).", DefaultValueFactory = _ => defaults.TeacherSteps };
var output = new Option<string>("--output") { Description = "Run folder (teacher cache, teacher answers, results.md/json).", DefaultValueFactory = _ => defaults.OutputDirectory };
var threads = new Option<int?>("--threads") { Description = "CPU threads for torch (default: 1 for the bundled models)." };
var verbose = new Option<bool>("--verbose") { Description = "Log every library message to the console." };

var root = new RootCommand("Distill ATKD sample: the ATKD objective trained from each sample source (gt, teacher, student, mixed) on the bundled data.")
{
    teacher, sources, seeds, trainExamples, evalExamples, steps, batchSize, lr, maxNewTokens, teacherSteps, output, threads, verbose,
};

root.SetAction(parse =>
{
    AtkdSettings settings;
    try
    {
        settings = new AtkdSettings
        {
            TeacherPath = parse.GetValue(teacher),
            Sources = parse.GetValue(sources) is { Length: > 0 } s ? [.. s.Select(AtkdSampleSourceNames.Parse)] : defaults.Sources,
            Seeds = parse.GetValue(seeds) ?? [],
            TrainExamples = parse.GetValue(trainExamples),
            EvalExamples = parse.GetValue(evalExamples),
            Steps = parse.GetValue(steps),
            BatchSize = parse.GetValue(batchSize),
            LearningRate = parse.GetValue(lr),
            MaxNewTokens = parse.GetValue(maxNewTokens),
            TeacherSteps = parse.GetValue(teacherSteps),
            OutputDirectory = parse.GetValue(output)!,
            Threads = parse.GetValue(threads),
        };
    }
    catch (ArgumentException ex)
    {
        AnsiConsole.MarkupLineInterpolated($"[red]{ex.Message}[/]");
        return 2;
    }

    var problems = settings.Validate();
    if (problems.Count > 0)
    {
        foreach (var p in problems)
        {
            AnsiConsole.MarkupLineInterpolated($"[red]{p}[/]");
        }

        return 2;
    }

    using var loggers = LoggerFactory.Create(b => b.AddSimpleConsole(o => o.SingleLine = true).SetMinimumLevel(parse.GetValue(verbose) ? LogLevel.Information : LogLevel.Warning));
    using var cancel = new CancellationTokenSource();
    Console.CancelKeyPress += (_, e) =>
    {
        e.Cancel = true;
        cancel.Cancel();
    };

    AtkdReport? report = null;
    AnsiConsole.Progress()
        .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new SpinnerColumn())
        .Start(ctx =>
        {
            var tasks = new Dictionary<string, ProgressTask>();
            report = new AtkdComparison(settings, loggers)
            {
                OnProgress = p =>
                {
                    if (!tasks.TryGetValue(p.Phase, out var task))
                    {
                        task = tasks[p.Phase] = ctx.AddTask(Markup.Escape(p.Phase), maxValue: Math.Max(1, p.Total));
                    }

                    task.Value = p.Done;
                },
            }.Run(cancel.Token);
            foreach (var task in tasks.Values)
            {
                task.Value = task.MaxValue;
            }
        });

    var r = report!;
    if (Console.IsOutputRedirected)
    {
        AnsiConsole.Profile.Width = 132;
    }

    var table = new Table().Border(TableBorder.Rounded).Title(string.Create(CultureInfo.InvariantCulture,
        $"[bold]ATKD sample sources[/]: {r.TestExamples} test examples, {r.TrainPrompts} prompts, {r.Steps} steps, seeds {string.Join(",", r.Seeds)} (mean ± std)"));
    table.AddColumns("source", "EM (test)", "ROUGE-L (test)", "answer loss", "agreement with teacher (%)", "generated batches (%)", "train time (s)");
    foreach (var row in r.Rows)
    {
        table.AddRow(
            Markup.Escape(row.Source),
            row.ExactMatch.Format("F1"),
            row.RougeL.Format("F1"),
            row.AnswerLoss.Format("F3"),
            row.Agreement?.Format("F1") ?? "—",
            row.Seconds is null ? "—" : row.GeneratedBatches.ToString("F0", CultureInfo.InvariantCulture),
            row.Seconds?.Format("F1") ?? "—");
    }

    AnsiConsole.Write(table);
    AnsiConsole.MarkupLineInterpolated($"Teacher: {r.Teacher}");
    AnsiConsole.MarkupLineInterpolated($"Teacher answers (SeqKD file): {r.TeacherAnswersFile}");
    AnsiConsole.MarkupLineInterpolated($"Table: {Path.Combine(Path.GetFullPath(settings.OutputDirectory), AtkdReport.MarkdownFile)} and {AtkdReport.JsonFile}");
    AnsiConsole.MarkupLineInterpolated($"Done in {r.Elapsed:mm\\:ss}.");
    return 0;
});

return root.Parse(args).Invoke();
