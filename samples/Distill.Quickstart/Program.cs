// Distill quickstart. With no arguments: load the teacher shipped under samples/teachers/ (an HF folder, as a real user has
// one), take a small labelled set and many unlabelled prompts from the generated letter tasks, and train the same small student once
// per method and seed — SFT on the labels, KD on the labels, SeqKD and logit KD on the teacher's answers, on-policy (GKD λ),
// ATKD — then print and write the table (mean ± std over seeds). `train-teacher` regenerates the shipped teacher.
using System.CommandLine;
using System.Globalization;
using Distill.Quickstart;
using Microsoft.Extensions.Logging;
using Spectre.Console;

var defaults = new QuickstartSettings();
var teacher = new Option<string?>("--teacher") { Description = "HF teacher folder (config.json, model.safetensors, tokenizer.json). Default: the --dataset's shipped teacher under samples/teachers/." };
var student = new Option<string?>("--student") { Description = "HF student folder. Default: a random 2-layer GPT-2 per seed." };
var data = new Option<string?>("--data") { Description = "JSONL instruction data (instruction/input/output or prompt/output). Default: --dataset." };
var dataset = new Option<string>("--dataset") { Description = "Built-in data when no --data is given: letters (generated count/first-letter questions, 250 test rows; teacher samples/teachers/" + QuickstartSettings.ShippedTeacher + ") or bundled (the bundled instruction data's --tasks; teacher samples/teachers/" + QuickstartSettings.BundledTeacher + ").", DefaultValueFactory = _ => defaults.Dataset };
var template = new Option<string>("--template") { Description = "Prompt template: compact, alpaca, dolly, llama2-chat, chatml.", DefaultValueFactory = _ => defaults.Template };
var methods = new Option<string[]>("--methods") { Description = "Student rows to train (sft kd-labels seqkd kd-seqkd on-policy atkd). Default: all.", AllowMultipleArgumentsPerToken = true };
var seeds = new Option<int[]>("--seeds") { Description = "Training seeds (student init and data order); the table reports mean ± std.", AllowMultipleArgumentsPerToken = true, DefaultValueFactory = _ => [.. defaults.Seeds] };
var labelled = new Option<int>("--labelled") { Description = "Labelled training examples (the first rows of train).", DefaultValueFactory = _ => defaults.LabelledExamples };
var unlabelled = new Option<int?>("--unlabelled") { Description = "Unlabelled prompts answered by the teacher (the train rows after the labelled ones; at most the rest of train).", DefaultValueFactory = _ => defaults.UnlabelledPrompts };
var steps = new Option<int>("--steps") { Description = "Optimizer steps of every student run.", DefaultValueFactory = _ => defaults.Steps };
var batchSize = new Option<int>("--batch-size") { Description = "Micro-batch size.", DefaultValueFactory = _ => defaults.BatchSize };
var lr = new Option<double>("--lr") { Description = "Student peak learning rate.", DefaultValueFactory = _ => defaults.LearningRate };
var lambda = new Option<double>("--lambda") { Description = "On-policy λ: probability that a batch's responses are the student's own samples.", DefaultValueFactory = _ => defaults.OnPolicyLambda };
var evalExamples = new Option<int>("--eval-examples") { Description = "Test examples scored per model.", DefaultValueFactory = _ => defaults.EvalExamples };
var devExamples = new Option<int>("--dev-examples") { Description = "Dev examples scored to pick each run's best weights (0 = last step).", DefaultValueFactory = _ => defaults.DevExamples };
var output = new Option<string>("--output") { Description = "Run folder (teacher-answer cache, results.md/json, metrics, TensorBoard).", DefaultValueFactory = _ => defaults.OutputDirectory };
var studentLayers = new Option<int>("--student-layers") { Description = "Random student depth.", DefaultValueFactory = _ => defaults.StudentLayers };
var studentHidden = new Option<int>("--student-hidden") { Description = "Random student width.", DefaultValueFactory = _ => defaults.StudentHidden };
var tasks = new Option<string[]>("--tasks") { Description = "With --dataset bundled: task families of the bundled data (add subtract multiply reverse uppercase sort count capital opposite), or 'all'. Default: uppercase count capital opposite multiply.", AllowMultipleArgumentsPerToken = true, DefaultValueFactory = _ => [.. QuickstartSettings.DefaultTasks] };
var kdRate = new Option<double>("--kd-rate") { Description = "α of the divergence objectives: (1 − α)·CE + α·KD.", DefaultValueFactory = _ => defaults.KdRate };
var kdTemperature = new Option<double>("--kd-temperature") { Description = "Temperature of the divergence objectives.", DefaultValueFactory = _ => defaults.KdTemperature };
var bf16 = new Option<bool>("--bf16") { Description = "Train in bfloat16 with float32 master weights." };
var threads = new Option<int?>("--threads") { Description = "CPU threads for torch (default: 1 for the bundled models, torch's choice otherwise)." };
var verbose = new Option<bool>("--verbose") { Description = "Log every trainer message to the console." };

var root = new RootCommand("Distill quickstart: a shipped teacher, few labels, many prompts: SFT vs KD vs SeqKD vs on-policy vs ATKD.")
{
    teacher, student, data, dataset, template, methods, seeds, labelled, unlabelled, steps, batchSize, lr, lambda, evalExamples, devExamples, output,
    studentLayers, studentHidden, tasks, kdRate, kdTemperature, bf16, threads, verbose,
};

root.SetAction(parse =>
{
    var settings = new QuickstartSettings
    {
        TeacherPath = parse.GetValue(teacher),
        StudentPath = parse.GetValue(student),
        DataPath = parse.GetValue(data),
        Dataset = parse.GetValue(dataset)!,
        Template = parse.GetValue(template)!,
        Methods = parse.GetValue(methods) is { Length: > 0 } m ? m : null,
        Seeds = parse.GetValue(seeds) ?? [],
        LabelledExamples = parse.GetValue(labelled),
        UnlabelledPrompts = parse.GetValue(unlabelled),
        Steps = parse.GetValue(steps),
        BatchSize = parse.GetValue(batchSize),
        LearningRate = parse.GetValue(lr),
        OnPolicyLambda = parse.GetValue(lambda),
        EvalExamples = parse.GetValue(evalExamples),
        DevExamples = parse.GetValue(devExamples),
        OutputDirectory = parse.GetValue(output)!,
        StudentLayers = parse.GetValue(studentLayers),
        StudentHidden = parse.GetValue(studentHidden),
        Tasks = parse.GetValue(tasks) is { Length: > 0 } families && !families.Contains("all") ? families : null,
        KdRate = parse.GetValue(kdRate),
        KdTemperature = parse.GetValue(kdTemperature),
        BFloat16 = parse.GetValue(bf16),
        Threads = parse.GetValue(threads),
    };
    var problems = settings.Validate();
    if (problems.Count > 0)
    {
        foreach (var p in problems)
        {
            AnsiConsole.MarkupLineInterpolated($"[red]{p}[/]");
        }

        return 2;
    }

    using var loggers = Loggers(parse.GetValue(verbose));
    using var cancel = CancelOnCtrlC();
    QuickstartReport? report = null;
    WithProgress(onProgress => report = new QuickstartPipeline(settings, loggers) { OnProgress = onProgress }.Run(cancel.Token));

    var r = report!;
    if (Console.IsOutputRedirected)
    {
        AnsiConsole.Profile.Width = 132; // a log file: don't squeeze the table into 80 columns
    }

    var table = new Table().Border(TableBorder.Rounded).Title(string.Create(CultureInfo.InvariantCulture,
        $"[bold]Distill quickstart[/]: {r.TestExamples} test examples, {r.LabelledExamples} labelled + {r.UnlabelledPrompts} unlabelled prompts, {r.Steps} steps, seeds {string.Join(",", r.Seeds)} (mean ± std)"));
    table.AddColumns("method", "train examples", "EM (test)", "answer loss", "agreement with teacher", "train time (s)");
    foreach (var row in r.Rows)
    {
        table.AddRow(
            Markup.Escape(row.Row),
            row.TrainingExamples > 0 ? row.TrainingExamples.ToString(CultureInfo.InvariantCulture) : "—",
            row.ExactMatch.Format("F1"),
            row.AnswerLoss.Format("F3"),
            row.Agreement.Format("F1"),
            row.Seconds.Mean > 0 ? row.Seconds.Format("F0") : "—");
    }

    AnsiConsole.Write(table);
    AnsiConsole.MarkupLineInterpolated($"Teacher: {r.TeacherDirectory}");
    if (r.TeacherAnswersFile is not null)
    {
        AnsiConsole.MarkupLineInterpolated($"Teacher answers: {r.TeacherAnswersFile} ({(r.TeacherAnswersFromCache ? "reused from an earlier run" : "generated now, reused next time")}; {r.TeacherAnswersExactMatch:F1} % equal the hidden answers)");
    }

    AnsiConsole.MarkupLineInterpolated($"Table: {Path.Combine(r.OutputDirectory, QuickstartReport.MarkdownFile)} and {QuickstartReport.JsonFile}");
    AnsiConsole.MarkupLineInterpolated($"TensorBoard: tensorboard --logdir {r.OutputDirectory}");
    AnsiConsole.MarkupLineInterpolated($"Done in {r.Elapsed:mm\\:ss}.");
    return 0;
});

var teacherDefaults = new TeacherTrainingSettings();
var tOutput = new Option<string?>("--output") { Description = "HF folder to write. Default: samples/teachers/<the --dataset's shipped teacher>." };
var tDataset = new Option<string>("--dataset") { Description = "Built-in data when no --data is given: letters (the default quickstart task) or bundled (its --tasks).", DefaultValueFactory = _ => teacherDefaults.Dataset };
var tTokenizer = new Option<string>("--tokenizer") { Description = "Bundled tokenizer: bytes (257 ids) or bpe (512 ids).", DefaultValueFactory = _ => teacherDefaults.Tokenizer };
var tLayers = new Option<int>("--layers") { Description = "Depth.", DefaultValueFactory = _ => teacherDefaults.Layers };
var tHidden = new Option<int>("--hidden") { Description = "Width.", DefaultValueFactory = _ => teacherDefaults.Hidden };
var tSteps = new Option<int>("--steps") { Description = "Optimizer steps.", DefaultValueFactory = _ => teacherDefaults.Steps };
var tBatch = new Option<int>("--batch-size") { Description = "Micro-batch size.", DefaultValueFactory = _ => teacherDefaults.BatchSize };
var tLr = new Option<double>("--lr") { Description = "Peak learning rate.", DefaultValueFactory = _ => teacherDefaults.LearningRate };
var tSeed = new Option<int>("--seed") { Description = "Seed (init and data order).", DefaultValueFactory = _ => teacherDefaults.Seed };
var tTasks = new Option<string[]>("--tasks") { Description = "With --dataset bundled: task families to train on, or 'all'. Default: the quickstart's (uppercase count capital opposite multiply).", AllowMultipleArgumentsPerToken = true, DefaultValueFactory = _ => [.. QuickstartSettings.DefaultTasks] };
var tData = new Option<string?>("--data") { Description = "JSONL instruction data to train on (its train split). Default: --dataset." };
var trainTeacher = new Command("train-teacher", "Train the quickstart's teacher on the training split and write it as an HF folder (deterministic for a seed).")
{
    tOutput, tDataset, tTokenizer, tLayers, tHidden, tSteps, tBatch, tLr, tSeed, tTasks, tData, verbose,
};
trainTeacher.SetAction(parse =>
{
    var t = new TeacherTrainingSettings
    {
        Dataset = parse.GetValue(tDataset)!,
        Tokenizer = parse.GetValue(tTokenizer)!,
        Layers = parse.GetValue(tLayers),
        Hidden = parse.GetValue(tHidden),
        Steps = parse.GetValue(tSteps),
        BatchSize = parse.GetValue(tBatch),
        LearningRate = parse.GetValue(tLr),
        Seed = parse.GetValue(tSeed),
        Tasks = parse.GetValue(tTasks) is { Length: > 0 } families && !families.Contains("all") ? families : null,
        DataPath = parse.GetValue(tData),
    };
    t = t with { OutputDirectory = parse.GetValue(tOutput) ?? TeacherTrainingSettings.DefaultOutput(t.Dataset) };
    if (t.Dataset is not (QuickstartSettings.LettersDataset or QuickstartSettings.BundledDataset) || t.Tokenizer is not ("bytes" or "bpe") || t.Layers < 1 || t.Hidden < 32 || t.Steps < 1 || t.BatchSize < 1 || t.LearningRate <= 0)
    {
        AnsiConsole.MarkupLineInterpolated($"[red]--dataset must be letters or bundled, --tokenizer bytes or bpe, --layers/--steps/--batch-size positive, --hidden at least 32, --lr positive.[/]");
        return 2;
    }

    using var loggers = Loggers(parse.GetValue(verbose));
    using var cancel = CancelOnCtrlC();
    (string Directory, double DevExactMatch, TimeSpan Elapsed) result = default;
    WithProgress(onProgress => result = TeacherTraining.Run(t, loggers, onProgress, cancel.Token));
    AnsiConsole.MarkupLineInterpolated($"Teacher written to {result.Directory}: dev exact match {result.DevExactMatch:F1}, {result.Elapsed:mm\\:ss}.");
    return 0;
});
root.Subcommands.Add(trainTeacher);

return root.Parse(args).Invoke();

static ILoggerFactory Loggers(bool verbose) =>
    LoggerFactory.Create(b => b.AddSimpleConsole(o => o.SingleLine = true).SetMinimumLevel(verbose ? LogLevel.Information : LogLevel.Warning));

static CancellationTokenSource CancelOnCtrlC()
{
    var cancel = new CancellationTokenSource();
    Console.CancelKeyPress += (_, e) =>
    {
        e.Cancel = true; // first Ctrl+C: stop cleanly after the current step
        cancel.Cancel();
    };
    return cancel;
}

static void WithProgress(Action<Action<QuickstartProgress>> run) =>
    AnsiConsole.Progress()
        .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn(), new SpinnerColumn())
        .Start(ctx =>
        {
            var tasks = new Dictionary<string, ProgressTask>();
            run(p =>
            {
                if (!tasks.TryGetValue(p.Phase, out var task))
                {
                    task = tasks[p.Phase] = ctx.AddTask(Markup.Escape(p.Phase), maxValue: p.Total);
                }

                task.Value = p.Done;
                if (p.Loss is double loss)
                {
                    task.Description = Markup.Escape(string.Create(CultureInfo.InvariantCulture, $"{p.Phase}  loss {loss:F3}"));
                }
            });
        });
