// Distill quickstart. With no arguments: on the bundled dataset, train a small GPT-2 teacher from scratch (or load the one
// cached by an earlier run), distill a smaller student with forward KL, train the same student with plain SFT for the same
// steps, and compare teacher / student before / distilled / SFT on held-out examples. With arguments it runs the same
// pipeline on real HF model folders and your JSONL data.
using System.CommandLine;
using System.Globalization;
using Distill.Quickstart;
using Microsoft.Extensions.Logging;
using Spectre.Console;

var defaults = new QuickstartSettings();
var teacher = new Option<string?>("--teacher") { Description = "HF teacher folder (config.json, model.safetensors, tokenizer.json). Default: the bundled teacher, trained on first run." };
var student = new Option<string?>("--student") { Description = "HF student folder. Default: a random 2-layer GPT-2." };
var data = new Option<string?>("--data") { Description = "JSONL instruction data (instruction/input/output or prompt/output). Default: the bundled dataset." };
var template = new Option<string>("--template") { Description = "Prompt template for --data: compact, alpaca, dolly, llama2-chat, chatml.", DefaultValueFactory = _ => defaults.Template };
var objective = new Option<string>("--objective") { Description = "Distillation objective: forward_kl, reverse_kl, js_divergence, skewed_forward_kl, skewed_reverse_kl, adaptive_kl, atkd, ...", DefaultValueFactory = _ => defaults.Objective };
var lora = new Option<bool>("--lora") { Description = "Train the student through LoRA adapters (PEFT format checkpoints)." };
var loraRank = new Option<int>("--lora-rank") { Description = "LoRA rank r.", DefaultValueFactory = _ => defaults.LoraRank };
var loraAlpha = new Option<double>("--lora-alpha") { Description = "LoRA alpha.", DefaultValueFactory = _ => defaults.LoraAlpha };
var loraTargets = new Option<string[]>("--lora-targets") { Description = "LoRA target modules (default: attention and MLP projections).", AllowMultipleArgumentsPerToken = true };
var steps = new Option<int>("--steps") { Description = "Distillation (and SFT baseline) optimizer steps.", DefaultValueFactory = _ => defaults.Steps };
var teacherSteps = new Option<int>("--teacher-steps") { Description = "Steps to train the bundled teacher.", DefaultValueFactory = _ => defaults.TeacherSteps };
var batchSize = new Option<int>("--batch-size") { Description = "Micro-batch size.", DefaultValueFactory = _ => defaults.BatchSize };
var lr = new Option<double>("--lr") { Description = "Student peak learning rate.", DefaultValueFactory = _ => defaults.LearningRate };
var evalExamples = new Option<int>("--eval-examples") { Description = "Test examples generated per model.", DefaultValueFactory = _ => defaults.EvalExamples };
var output = new Option<string>("--output") { Description = "Run folder (teacher cache, checkpoints, metrics.jsonl, TensorBoard).", DefaultValueFactory = _ => defaults.OutputDirectory };
var bf16 = new Option<bool>("--bf16") { Description = "Train in bfloat16 with float32 master weights." };
var retrain = new Option<bool>("--retrain-teacher") { Description = "Retrain the bundled teacher even if a cached one matches." };
var noSft = new Option<bool>("--no-sft") { Description = "Skip the SFT baseline." };
var teacherLayers = new Option<int>("--teacher-layers") { Description = "Bundled teacher depth.", DefaultValueFactory = _ => defaults.TeacherLayers };
var teacherHidden = new Option<int>("--teacher-hidden") { Description = "Bundled teacher width.", DefaultValueFactory = _ => defaults.TeacherHidden };
var studentLayers = new Option<int>("--student-layers") { Description = "Random student depth.", DefaultValueFactory = _ => defaults.StudentLayers };
var studentHidden = new Option<int>("--student-hidden") { Description = "Random student width.", DefaultValueFactory = _ => defaults.StudentHidden };
var devExamples = new Option<int>("--dev-examples") { Description = "Dev examples scored at each epoch end to pick the best checkpoint (0 = off).", DefaultValueFactory = _ => defaults.DevExamples };
var tokenizerOption = new Option<string>("--tokenizer") { Description = "Bundled tokenizer when no --teacher is given: bpe (512 ids) or bytes (257 ids).", DefaultValueFactory = _ => defaults.Tokenizer };
var tasks = new Option<string[]>("--tasks") { Description = "Task families of the bundled data to train and evaluate on (add subtract multiply reverse uppercase sort count capital opposite), or 'all'. Default: uppercase count capital opposite multiply.", AllowMultipleArgumentsPerToken = true, DefaultValueFactory = _ => [.. QuickstartSettings.DefaultTasks] };
var kdRate = new Option<double>("--kd-rate") { Description = "α of the divergence objectives: (1 − α)·CE + α·KD.", DefaultValueFactory = _ => defaults.KdRate };
var kdTemperature = new Option<double>("--kd-temperature") { Description = "Temperature of the divergence objectives.", DefaultValueFactory = _ => defaults.KdTemperature };
var teacherLr = new Option<double>("--teacher-lr") { Description = "Bundled teacher peak learning rate.", DefaultValueFactory = _ => defaults.TeacherLearningRate };
var threads = new Option<int?>("--threads") { Description = "CPU threads for torch (default: torch's choice)." };
var verbose = new Option<bool>("--verbose") { Description = "Log every trainer message to the console." };

var root = new RootCommand("Distill quickstart: train a teacher, distill a student, compare with SFT.")
{
    teacher, student, data, template, objective, lora, loraRank, loraAlpha, loraTargets, steps, teacherSteps, batchSize, lr, evalExamples, output, bf16, retrain, noSft,
    teacherLayers, teacherHidden, studentLayers, studentHidden, devExamples, tokenizerOption, tasks, kdRate, kdTemperature, teacherLr, threads, verbose,
};

root.SetAction(parse =>
{
    var settings = new QuickstartSettings
    {
        TeacherPath = parse.GetValue(teacher),
        StudentPath = parse.GetValue(student),
        DataPath = parse.GetValue(data),
        Template = parse.GetValue(template)!,
        Objective = parse.GetValue(objective)!,
        Lora = parse.GetValue(lora),
        LoraRank = parse.GetValue(loraRank),
        LoraAlpha = parse.GetValue(loraAlpha),
        LoraTargets = parse.GetValue(loraTargets) is { Length: > 0 } targets ? targets : null,
        Steps = parse.GetValue(steps),
        TeacherSteps = parse.GetValue(teacherSteps),
        BatchSize = parse.GetValue(batchSize),
        LearningRate = parse.GetValue(lr),
        EvalExamples = parse.GetValue(evalExamples),
        OutputDirectory = parse.GetValue(output)!,
        BFloat16 = parse.GetValue(bf16),
        RetrainTeacher = parse.GetValue(retrain),
        SftBaseline = !parse.GetValue(noSft),
        TeacherLayers = parse.GetValue(teacherLayers),
        TeacherHidden = parse.GetValue(teacherHidden),
        StudentLayers = parse.GetValue(studentLayers),
        StudentHidden = parse.GetValue(studentHidden),
        DevExamples = parse.GetValue(devExamples),
        Threads = parse.GetValue(threads),
        Tokenizer = parse.GetValue(tokenizerOption)!,
        TeacherLearningRate = parse.GetValue(teacherLr),
        KdRate = parse.GetValue(kdRate),
        KdTemperature = parse.GetValue(kdTemperature),
        Tasks = parse.GetValue(tasks) is { Length: > 0 } families && !families.Contains("all") ? families : null,
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

    using var loggers = LoggerFactory.Create(b => b.AddSimpleConsole(o => o.SingleLine = true).SetMinimumLevel(parse.GetValue(verbose) ? LogLevel.Information : LogLevel.Warning));
    using var cancel = new CancellationTokenSource();
    Console.CancelKeyPress += (_, e) =>
    {
        e.Cancel = true; // first Ctrl+C: checkpoint and stop cleanly
        cancel.Cancel();
    };

    QuickstartReport? report = null;
    AnsiConsole.Progress()
        .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn(), new SpinnerColumn())
        .Start(ctx =>
        {
            var tasks = new Dictionary<string, ProgressTask>();
            var pipeline = new QuickstartPipeline(settings, loggers)
            {
                OnProgress = p =>
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
                },
            };
            report = pipeline.Run(cancel.Token);
        });

    var r = report!;
    if (Console.IsOutputRedirected)
    {
        AnsiConsole.Profile.Width = 132; // a log file: don't squeeze the table into 80 columns
    }

    var table = new Table().Border(TableBorder.Rounded).Title($"[bold]Distill quickstart[/] — objective [green]{Markup.Escape(r.Objective)}[/], held-out examples: {r.TestExamples}");
    table.AddColumns("model", "params", "ROUGE-L", "EM", "answer loss", "top-1 = teacher", "KL(teacher‖model)");
    foreach (var row in r.Rows)
    {
        table.AddRow(
            Markup.Escape(row.Model),
            row.Parameters.ToString("N0", CultureInfo.InvariantCulture),
            row.RougeL.ToString("F1", CultureInfo.InvariantCulture),
            row.ExactMatch.ToString("F1", CultureInfo.InvariantCulture),
            row.TestLoss.ToString("F3", CultureInfo.InvariantCulture),
            row.Top1Agreement is double a ? (100 * a).ToString("F1", CultureInfo.InvariantCulture) + " %" : "—",
            row.MeanKl is double kl ? kl.ToString("F3", CultureInfo.InvariantCulture) : "—");
    }

    AnsiConsole.Write(table);
    AnsiConsole.MarkupLineInterpolated($"Teacher: {r.TeacherDirectory} ({(r.TeacherFromCache ? "loaded from cache" : "trained now, cached for next time")})");
    AnsiConsole.MarkupLineInterpolated($"Distilled student (best dev checkpoint): {r.DistilledCheckpoint}");
    if (r.SftCheckpoint is not null)
    {
        AnsiConsole.MarkupLineInterpolated($"SFT baseline: {r.SftCheckpoint}");
    }

    AnsiConsole.MarkupLineInterpolated($"Metrics: {Path.Combine(r.OutputDirectory, "distill", "metrics.jsonl")}");
    AnsiConsole.MarkupLineInterpolated($"TensorBoard: tensorboard --logdir {r.OutputDirectory}");
    AnsiConsole.MarkupLineInterpolated($"Done in {r.Elapsed:mm\\:ss}.");
    return 0;
});

return root.Parse(args).Invoke();
