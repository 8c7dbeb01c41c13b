using System.Diagnostics;
using Distill.Data;
using Distill.Models;
using Distill.Training;
using Distill.Training.Sources;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Distill.Quickstart;

/// <summary>A progress event of the quickstart: the phase, units done of the phase's total, and the latest loss.</summary>
/// <param name="Phase">Human-readable phase name.</param>
/// <param name="Done">Units done.</param>
/// <param name="Total">Units in the phase.</param>
/// <param name="Loss">The latest training loss, when training.</param>
public readonly record struct QuickstartProgress(string Phase, int Done, int Total, double? Loss);

/// <summary>
/// The quickstart, top to bottom: the teacher folder → data regime (a small labelled set, many unlabelled prompts) → the
/// teacher's answers to the unlabelled prompts (cached) → every student row over several seeds → the table
/// (<see cref="QuickstartReport.Write"/>). <see cref="Run"/> is what <c>Program.cs</c> renders and what the integration test
/// calls with small settings.
/// </summary>
public sealed class QuickstartPipeline(QuickstartSettings settings, ILoggerFactory? loggerFactory = null)
{
    /// <summary>The teacher row's key.</summary>
    public const string TeacherRow = "teacher";

    /// <summary>The untrained student's row key.</summary>
    public const string StudentBeforeRow = "before";

    private readonly ILoggerFactory loggers = loggerFactory ?? NullLoggerFactory.Instance;

    /// <summary>Gets or sets the progress callback (called on the pipeline's thread).</summary>
    public Action<QuickstartProgress>? OnProgress { get; set; }

    /// <summary>Gets the folder of a shipped teacher, as copied next to the sample's assembly (by default the one the default run loads).</summary>
    /// <param name="name">The teacher's name under <c>samples/teachers/</c>.</param>
    /// <returns>The folder path.</returns>
    public static string ShippedTeacherDirectory(string name = QuickstartSettings.ShippedTeacher) => Path.Combine(AppContext.BaseDirectory, "teachers", name);

    /// <summary>Runs the whole quickstart.</summary>
    /// <param name="cancellationToken">Stops after the current training step and skips the remaining runs.</param>
    /// <returns>The report (also written to the run folder).</returns>
    public QuickstartReport Run(CancellationToken cancellationToken = default)
    {
        var errors = settings.Validate();
        if (errors.Count > 0)
        {
            throw new ArgumentException(string.Join(" ", errors));
        }

        var clock = Stopwatch.StartNew();
        Directory.CreateDirectory(settings.OutputDirectory);
        using var provider = QuickstartServices.Build(settings, loggers, settings.TeacherPath is null && settings.StudentPath is null);
        var device = provider.GetRequiredService<IDistillRuntime>().Compute.Device;
        var objectives = provider.GetRequiredService<IObjectiveFactory>();
        var trainers = provider.GetRequiredService<IDistillationTrainerFactory>();

        // 1. The teacher, as a real user has it: an HF folder (weights, config, tokenizer).
        var teacherDir = Path.GetFullPath(settings.TeacherPath ?? ShippedTeacherDirectory(settings.DefaultTeacher));
        if (!File.Exists(Path.Combine(teacherDir, "config.json")))
        {
            throw new FileNotFoundException($"The teacher folder '{teacherDir}' has no config.json. The shipped teacher lives in samples/teachers/{settings.DefaultTeacher}/ and is copied next to the sample's assembly by its build; regenerate it with `dotnet run -c Release --project samples/Distill.Quickstart -- train-teacher{(settings.Dataset == QuickstartSettings.BundledDataset ? " --dataset bundled" : "")}` (docs/quickstart.md has the recipe).", Path.Combine(teacherDir, "config.json"));
        }

        var tokenizer = HfTokenizer.FromPretrained(teacherDir, loggers.CreateLogger<HfTokenizer>());
        using var teacher = AutoCausalLM.FromPretrained(teacherDir, device: device);
        teacher.eval();
        var eos = TokenizedDataset.PadId(tokenizer);

        // 2. The regime: a small labelled set, many unlabelled prompts (answers hidden), dev for selection, test held out.
        var splits = QuickstartData.Load(settings);
        var labelled = splits.Train.Take(settings.LabelledExamples).ToList();
        var prompts = splits.Train.Skip(settings.LabelledExamples).Take(settings.UnlabelledPrompts ?? int.MaxValue).ToList();
        var devSet = Tokenize(splits.Dev.Take(settings.DevExamples), tokenizer);
        var testSet = Tokenize(splits.Test.Take(settings.EvalExamples), tokenizer);
        if (labelled.Count == 0 || testSet.Count == 0)
        {
            throw new ArgumentException($"No labelled or test examples (labelled {labelled.Count}, test {testSet.Count}); check --tasks / --data.");
        }

        // 3. The teacher on the test prompts (its answers define agreement) and on the unlabelled prompts (cached answers).
        var teacherScores = Score(TeacherRow, teacher, testSet, eos, null, cancellationToken);
        var methods = settings.Methods is null ? QuickstartMethods.All : [.. QuickstartMethods.All.Where(m => settings.Methods.Contains(m.Key))];
        TeacherAnswers? answers = null;
        if (methods.Any(m => m.Data == TrainingSet.TeacherAnswers) && prompts.Count > 0)
        {
            answers = TeacherAnswers.LoadOrGenerate(teacher, tokenizer, teacherDir, prompts, settings, loggers, p => OnProgress?.Invoke(new QuickstartProgress("teacher answers for the unlabelled prompts", p.Done, p.Total, null)), cancellationToken);
        }

        var rows = new List<QuickstartRow>
        {
            Row(TeacherRow, "teacher", 0, [(teacherScores with { Agreement = 100 }, 0)]),
        };

        // 4. The student before training (one init per seed).
        var before = new List<(Scores, double)>();
        foreach (var seed in settings.Seeds)
        {
            using var student = QuickstartServices.CreateStudent(settings, tokenizer, seed, device);
            before.Add((Score("student (before)", student, testSet, eos, teacherScores.Predictions, cancellationToken), 0));
        }

        rows.Add(Row(StudentBeforeRow, "student (before)", 0, before));

        // 5. Every student row, once per seed: same student shape, same steps, same batch size; only data and objective differ.
        var labelledSet = Tokenize(labelled, tokenizer);
        var answeredSet = answers is null ? null : Tokenize([.. labelled, .. answers.Examples], tokenizer);
        var teacherWrapper = new LocalModelTeacher(teacher);
        foreach (var method in methods)
        {
            var data = method.Data == TrainingSet.Labelled ? labelledSet : answeredSet ?? labelledSet;
            var runs = new List<(Scores, double)>();
            foreach (var seed in settings.Seeds)
            {
                if (cancellationToken.IsCancellationRequested)
                {
                    break;
                }

                var run = new StudentRun(settings, method, seed, data, devSet, tokenizer, eos, device, objectives, trainers, loggers)
                {
                    Transforms = student => SampleSource(method, student, eos),
                    Teacher = method.UsesTeacherLogits || method.OnPolicy ? teacherWrapper : null,
                    OnProgress = OnProgress,
                };
                using var student = run.Train(cancellationToken, out var seconds);
                runs.Add((Score(method.Row, student, testSet, eos, teacherScores.Predictions, cancellationToken), seconds));
            }

            if (runs.Count > 0)
            {
                rows.Add(Row(method.Key, method.Row, data.Count, runs));
            }
        }

        var report = new QuickstartReport(
            rows,
            [.. settings.Seeds],
            testSet.Count,
            labelled.Count,
            answers?.Examples.Count ?? 0,
            settings.Steps,
            teacherDir,
            answers?.Path,
            answers?.FromCache ?? false,
            Path.GetFullPath(settings.OutputDirectory),
            clock.Elapsed)
        {
            TeacherAnswersExactMatch = answers?.ExactMatchOnHiddenAnswers,
        };
        report.Write();
        return report;
    }

    /// <summary>The row's sample source: GKD's on-policy source (λ, sampling) or ATKD's <c>teacher</c> source (the teacher-answer file as is).</summary>
    private IReadOnlyList<IBatchTransform> SampleSource(QuickstartMethod method, CausalLM student, long eos)
    {
        if (method.OnPolicy)
        {
            var options = SampleSourceOptions.Gkd(settings.OnPolicyLambda);
            options.Temperature = settings.OnPolicyTemperature;
            options.MaxNewTokens = settings.MaxNewTokens;
            options.EosTokenIds = [eos];
            options.PadTokenId = eos;
            options.MaxSequenceLength = settings.MaxLength;
            return [SampleSources.OnPolicy(student, options, loggers.CreateLogger<OnPolicySource>())];
        }

        return method.Objective.StartsWith("atkd", StringComparison.Ordinal)
            ? [SampleSources.Create(AtkdSampleSource.Teacher, student, logger: loggers.CreateLogger<OnPolicySource>())]
            : [];
    }

    private static QuickstartRow Row(string key, string name, int examples, IReadOnlyList<(Scores Scores, double Seconds)> runs) => new(
        key,
        name,
        examples,
        SeedStat.Of([.. runs.Select(r => r.Scores.ExactMatch)]),
        SeedStat.Of([.. runs.Select(r => r.Scores.AnswerLoss)]),
        SeedStat.Of([.. runs.Select(r => r.Scores.Agreement)]),
        SeedStat.Of([.. runs.Select(r => r.Seconds)]));

    private TokenizedDataset Tokenize(IEnumerable<TextExample> examples, HfTokenizer tokenizer) =>
        TokenizedDataset.Create(examples, tokenizer, null, settings.MaxLength, settings.MaxLength / 2, loggers.CreateLogger<TokenizedDataset>());

    private Scores Score(string name, CausalLM model, TokenizedDataset testSet, long eos, IReadOnlyList<string>? teacherAnswers, CancellationToken cancellationToken)
    {
        OnProgress?.Invoke(new QuickstartProgress($"evaluating {name}", 0, 1, null));
        var (em, predictions) = QuickstartEvaluation.Generate(model, testSet, eos, settings, loggers, cancellationToken);
        var loss = QuickstartEvaluation.AnswerLoss(model, testSet);
        var agreement = teacherAnswers is null ? 100.0 : 100.0 * predictions.Zip(teacherAnswers).Count(p => p.First == p.Second) / predictions.Count;
        OnProgress?.Invoke(new QuickstartProgress($"evaluating {name}", 1, 1, null));
        return new Scores(em, loss, agreement, predictions);
    }

    private sealed record Scores(double ExactMatch, double AnswerLoss, double Agreement, IReadOnlyList<string> Predictions);
}
