// Distill SDFT sample (self-distillation fine-tuning, sail-sg/sdft). With no arguments, on the bundled data: a small seed
// model is trained on a "general" split (or loaded from an earlier run's cache), then fine-tuned with LoRA on a "task" split
// two ways — vanilla SFT on the original responses, and SDFT on the seed model's own rewrites of them (filtered, with
// fallback to the original) — for several seeds; the table shows the task metric and the general metric (forgetting) of
// seed model, SFT and SDFT as mean ± std, plus the filter statistics. With arguments it runs on an HF model folder and
// JSON/JSONL data.
using System.CommandLine;
using System.Globalization;
using Distill.Data.Synthesis;
using Distill.Sdft;
using Microsoft.Extensions.Logging;
using Spectre.Console;

var defaults = new SdftSettings();
var model = new Option<string?>("--model") { Description = "HF seed-model folder (config.json, model.safetensors, tokenizer.json). Default: the bundled seed model, trained on first run." };
var data = new Option<string?>("--data") { Description = "Task training data, JSON array or JSONL (instruction/input/output, question/answer, ...). Every 10th row is the task test set unless --task-test is given." };
var taskTest = new Option<string?>("--task-test") { Description = "Task test data (JSON/JSONL)." };
var general = new Option<string?>("--general") { Description = "Held-out general data (JSON/JSONL), scored with ROUGE-L: shows forgetting. Required with --data." };
var task = new Option<string>("--task") { Description = "SDFT task type: " + string.Join(", ", SdftTask.All.Select(t => t.Name)) + ".", DefaultValueFactory = _ => defaults.Task };
var branch = new Option<SdftBranch>("--branch") { Description = "Official branch to follow where they differ: Reproduce (paper numbers) or Main.", DefaultValueFactory = _ => defaults.Branch };
var seeds = new Option<int[]>("--seeds") { Description = "Seeds (rewrite sampling, LoRA init, data order).", AllowMultipleArgumentsPerToken = true, DefaultValueFactory = _ => [.. defaults.Seeds] };
var epochs = new Option<int?>("--epochs") { Description = "Fine-tuning epochs (default: the task's official count; math 5)." };
var lr = new Option<double?>("--lr") { Description = "LoRA learning rate (default: 1e-4 official; 1e-2 for the bundled model)." };
var batch = new Option<int?>("--batch-size") { Description = "Fine-tuning micro-batch (default: 2 × 4 accumulation official; 8 for the bundled model)." };
var targets = new Option<string[]>("--lora-targets") { Description = "LoRA target modules (default q_proj v_proj; GPT-2 c_attn).", AllowMultipleArgumentsPerToken = true };
var maxNew = new Option<int?>("--max-new-tokens") { Description = "Max new tokens of rewrites and answers (default 512; 32 for the bundled model)." };
var genBatch = new Option<int>("--generation-batch-size") { Description = "Prompts generated together (left-padded, KV cache).", DefaultValueFactory = _ => defaults.GenerationBatchSize };
var evalExamples = new Option<int>("--eval-examples") { Description = "Most test examples per metric (0 = all).", DefaultValueFactory = _ => defaults.EvalExamples };
var trainExamples = new Option<int>("--train-examples") { Description = "Most task training rows (0 = all).", DefaultValueFactory = _ => defaults.TrainExamples };
var seedSteps = new Option<int>("--seed-steps") { Description = "Steps that train the bundled seed model.", DefaultValueFactory = _ => defaults.SeedSteps };
var seedHidden = new Option<int>("--seed-hidden") { Description = "Bundled seed model width.", DefaultValueFactory = _ => defaults.SeedHidden };
var seedLayers = new Option<int>("--seed-layers") { Description = "Bundled seed model depth.", DefaultValueFactory = _ => defaults.SeedLayers };
var output = new Option<string>("--output") { Description = "Run folder.", DefaultValueFactory = _ => defaults.OutputDirectory };
var retrain = new Option<bool>("--retrain-seed") { Description = "Retrain the bundled seed model even if a cached one matches." };
var threads = new Option<int?>("--threads") { Description = "CPU threads for torch." };
var verbose = new Option<bool>("--verbose") { Description = "Log every library message." };

var root = new RootCommand("Distill SDFT: self-distillation fine-tuning vs vanilla SFT, task metric and forgetting.")
{
    model, data, taskTest, general, task, branch, seeds, epochs, lr, batch, targets, maxNew, genBatch, evalExamples, trainExamples, seedSteps, seedHidden, seedLayers, output, retrain, threads, verbose,
};

root.SetAction(parse =>
{
    var settings = new SdftSettings
    {
        ModelPath = parse.GetValue(model),
        DataPath = parse.GetValue(data),
        TaskTestPath = parse.GetValue(taskTest),
        GeneralPath = parse.GetValue(general),
        Task = parse.GetValue(task)!,
        Branch = parse.GetValue(branch),
        Seeds = parse.GetValue(seeds)!,
        Epochs = parse.GetValue(epochs),
        LearningRate = parse.GetValue(lr),
        BatchSize = parse.GetValue(batch),
        LoraTargets = parse.GetValue(targets) is { Length: > 0 } t ? t : null,
        MaxNewTokens = parse.GetValue(maxNew),
        GenerationBatchSize = parse.GetValue(genBatch),
        EvalExamples = parse.GetValue(evalExamples),
        TrainExamples = parse.GetValue(trainExamples),
        SeedSteps = parse.GetValue(seedSteps),
        SeedHidden = parse.GetValue(seedHidden),
        SeedLayers = parse.GetValue(seedLayers),
        OutputDirectory = parse.GetValue(output)!,
        RetrainSeed = parse.GetValue(retrain),
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

    using var loggers = LoggerFactory.Create(b => b.AddSimpleConsole(o => o.SingleLine = true).SetMinimumLevel(parse.GetValue(verbose) ? LogLevel.Information : LogLevel.Warning));
    using var cancel = new CancellationTokenSource();
    Console.CancelKeyPress += (_, e) =>
    {
        e.Cancel = true; // stop after the current step or batch; distilled files resume on the next run
        cancel.Cancel();
    };

    SdftReport? report = null;
    AnsiConsole.Progress()
        .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn(), new SpinnerColumn())
        .Start(ctx =>
        {
            var bars = new Dictionary<string, ProgressTask>();
            var pipeline = new SdftPipeline(settings, loggers)
            {
                OnProgress = p =>
                {
                    if (!bars.TryGetValue(p.Phase, out var bar))
                    {
                        bar = bars[p.Phase] = ctx.AddTask(Markup.Escape(p.Phase), maxValue: Math.Max(1, p.Total));
                    }

                    bar.Value = p.Done;
                    if (p.Loss is double loss)
                    {
                        bar.Description = Markup.Escape(string.Create(CultureInfo.InvariantCulture, $"{p.Phase}  loss {loss:F3}"));
                    }
                },
            };
            report = pipeline.Run(cancel.Token);
        });

    var r = report!;
    if (Console.IsOutputRedirected)
    {
        AnsiConsole.Profile.Width = 132;
    }

    var table = new Table().Border(TableBorder.Rounded)
        .Title($"[bold]Distill SDFT[/] — task {Markup.Escape(settings.Task)}, branch {settings.Branch}, mean ± std over {settings.Seeds.Count} seeds");
    table.AddColumns("model", $"{Markup.Escape(r.TaskMetric)} (n={r.TaskTestCount})", $"{Markup.Escape(r.GeneralMetric)} (n={r.GeneralTestCount})");
    foreach (var row in r.Rows)
    {
        table.AddRow(Markup.Escape(row.Model), SdftFormat.MeanStd(row.Task), SdftFormat.MeanStd(row.General));
    }

    AnsiConsole.Write(table);
    var stats = new Table().Border(TableBorder.Rounded).Title("[bold]SDFT filter[/] (rows per reason; a rejected rewrite falls back to the original)");
    stats.AddColumn("seed");
    foreach (var reason in Enum.GetValues<SdftReason>())
    {
        stats.AddColumn(reason.ToString());
    }

    for (var i = 0; i < r.Statistics.Count; i++)
    {
        stats.AddRow([settings.Seeds[i].ToString(CultureInfo.InvariantCulture), .. Enum.GetValues<SdftReason>().Select(x => r.Statistics[i].Counts[x].ToString(CultureInfo.InvariantCulture))]);
    }

    AnsiConsole.Write(stats);
    AnsiConsole.MarkupLineInterpolated($"Seed model: {(r.SeedFromCache ? "loaded" : "trained now, cached for next time")}. Distilled data: {string.Join(", ", r.DistilledFiles)}");
    AnsiConsole.MarkupLineInterpolated($"Done in {r.Elapsed:mm\\:ss}.");
    return 0;
});

return root.Parse(args).Invoke();
