using System.Diagnostics;
using System.Globalization;
using Distill.Data;
using Distill.Data.Alignment;
using Distill.Losses.CrossTokenizer;
using Distill.Models;
using Distill.Training;
using static TorchSharp.torch;

namespace Distill.CrossTokenizer;

/// <summary>
/// The comparison, top to bottom: teacher folder → data (labelled rows, unlabelled prompts) → teacher answers (SeqKD,
/// cached) → teacher and student-before rows → for each method and seed, a fresh student trained and scored → the table,
/// written to the run folder and returned. <c>Program.cs</c> prints it; the integration test runs it at smoke size.
/// </summary>
public sealed class CrossTokenizerPipeline(CrossTokenizerSettings settings, Action<string>? log = null)
{
    /// <summary>The teacher's row.</summary>
    public const string TeacherRow = "teacher";

    /// <summary>The untrained student's row.</summary>
    public const string StudentBeforeRow = "student before";

    private readonly Action<string> _log = log ?? (_ => { });

    /// <summary>The folder of the shipped teacher, next to the sample's binaries.</summary>
    public static string ShippedTeacherDirectory => Path.Combine(AppContext.BaseDirectory, "teachers", "bpe-4x128");

    /// <summary>What each row is, for the table's legend.</summary>
    public static IReadOnlyDictionary<string, string> Descriptions { get; } = new Dictionary<string, string>
    {
        [TeacherRow] = "the BPE teacher (4×128 GPT-2, tokenizer B), scored on its own tokenisation",
        [StudentBeforeRow] = "the untrained byte-level student",
        ["sft"] = "CE on the labelled rows only (no teacher)",
        ["seqkd"] = "CE on the labelled rows + the teacher's answers to the unlabelled prompts",
        ["uld"] = "ULD (llm-recipes): CE + 1.5 · sorted-probability L1 to the teacher, on labelled + teacher-answer rows",
        ["uld_dskd"] = "ULD as DSKD re-implements it: 0.5 · CE + 0.5 · ULD, on labelled + teacher-answer rows",
        ["min_ed"] = "MinED (DSKD's min_edit_dis_kld): 0.5 · CE + 0.5 · KL to the DTW-aligned, vocabulary-mapped teacher, on labelled + teacher-answer rows",
        ["dskd_cma"] = "DSKD with cross-model attention: 0.5 · CE + 0.5 · (t2s KD + t2s CE + s2t KD), on labelled + teacher-answer rows",
    };

    /// <summary>Runs the comparison.</summary>
    /// <param name="cancellationToken">Stops between phases and inside training.</param>
    /// <returns>The report (also written as results.md and results.json in the run folder).</returns>
    public CrossTokenizerReport Run(CancellationToken cancellationToken = default)
    {
        var problems = settings.Validate();
        if (problems.Count > 0)
        {
            throw new ArgumentException(string.Join(" ", problems));
        }

        var wall = Stopwatch.StartNew();
        var phases = new Dictionary<string, double>();
        var clock = Stopwatch.StartNew();
        var output = Path.GetFullPath(settings.OutputDirectory);
        Directory.CreateDirectory(output);

        // 1. The teacher, as users get one: an HF folder with its own tokenizer.
        var teacherDir = Path.GetFullPath(settings.TeacherDirectory ?? ShippedTeacherDirectory);
        if (!File.Exists(Path.Combine(teacherDir, "config.json")))
        {
            throw new ArgumentException($"No teacher at {teacherDir} (config.json missing). Regenerate it with: dotnet run -c Release --project samples/Distill.CrossTokenizer -- train-teacher");
        }

        using var teacher = AutoCausalLM.FromPretrained(teacherDir);
        teacher.eval();
        var teacherTokenizer = HfTokenizer.FromPretrained(teacherDir);
        var studentTokenizer = BundledData.TokenizerA();
        if (teacherTokenizer.VocabSize == studentTokenizer.VocabSize)
        {
            throw new ArgumentException($"The teacher at {teacherDir} has the student's vocabulary size ({studentTokenizer.VocabSize}): this sample compares different tokenizers.");
        }

        // 2. Data: the labelled rows, the unlabelled prompts (labels dropped), the scored split.
        var template = InstructionTemplate.Compact;
        var trainRows = Tasks.Load(BundledSplit.Train, settings.Tasks);
        var promptCount = settings.Prompts ?? Math.Max(0, trainRows.Count - settings.Labelled);
        if (settings.Labelled + promptCount > trainRows.Count)
        {
            throw new ArgumentException($"--labelled {settings.Labelled} + --prompts {promptCount} exceed the {trainRows.Count} bundled training rows of the task families {string.Join(", ", settings.Tasks)}.");
        }

        var labelled = trainRows.Take(settings.Labelled).ToList();
        var prompts = trainRows.Skip(settings.Labelled).Take(promptCount).ToList();
        var evalRows = Tasks.Load(settings.Split == "dev" ? BundledSplit.Dev : BundledSplit.Test, settings.Tasks).Take(settings.EvalExamples ?? int.MaxValue).ToList();
        _log($"teacher {Path.GetFileName(teacherDir)} ({teacherTokenizer.VocabSize} ids), student bytes ({studentTokenizer.VocabSize} ids); {labelled.Count} labelled rows, {prompts.Count} unlabelled prompts, {evalRows.Count} {settings.Split} rows");
        phases["load"] = Lap(clock);

        // 3. SeqKD: the teacher answers the unlabelled prompts (cached in the run folder by a hash of teacher, prompts and settings).
        var (seqkd, answersCached) = TeacherAnswers.LoadOrGenerate(teacher, teacherDir, teacherTokenizer, prompts, output, cancellationToken);
        var kept = seqkd.Records.Select(r => new InstructionExample(prompts[r.Index].Instruction, prompts[r.Index].Input, r.TeacherOutput.Trim())).ToList();
        var matches = seqkd.Records.Count(r => r.TeacherOutput.Trim() == prompts[r.Index].Output.Trim());
        var st = seqkd.Statistics;
        var stats = new TeacherAnswerStats(st.Generated, st.Written, st.Truncated, st.Empty, prompts.Count == 0 ? 0 : 100.0 * matches / prompts.Count, Path.GetFileName(seqkd.OutputPath), answersCached);
        _log(string.Create(CultureInfo.InvariantCulture, $"teacher answers: {stats.Kept}/{stats.Generated} kept ({stats.HitTokenLimit} hit the token limit, {stats.Empty} empty), {stats.MatchLabel:F1} % of the prompts answered with their hidden label ({(answersCached ? "from cache" : "generated")})"));
        phases["teacher answers"] = Lap(clock);

        var labelledText = labelled.Select(template.Apply).ToList();
        var mixedText = labelledText.Concat(kept.Select(template.Apply)).ToList();
        var evalText = evalRows.Select(template.Apply).ToList();
        var sftSet = TokenizedDataset.Create(labelledText, studentTokenizer, null, Models.MaxLength, Models.MaxPromptLength);
        var seqkdSet = TokenizedDataset.Create(mixedText, studentTokenizer, null, Models.MaxLength, Models.MaxPromptLength);
        var crossSet = TokenizedDataset.Create(mixedText, studentTokenizer, teacherTokenizer, Models.MaxLength, Models.MaxPromptLength);
        var map = VocabularyMap.Build(studentTokenizer, teacherTokenizer);
        var minEdSet = settings.Methods.Contains("min_ed") ? crossSet.WithMinEdAlignments(map) : null;
        var studentEval = TokenizedDataset.Create(evalText, studentTokenizer, null, Models.MaxLength, Models.MaxPromptLength);
        var teacherEval = TokenizedDataset.Create(evalText, teacherTokenizer, null, Models.MaxLength, Models.MaxPromptLength);
        phases["tokenise + MinED alignments"] = Lap(clock);

        // 4. The teacher and the untrained student.
        var rows = new List<MethodRow>();
        var tasks = evalRows.Select(r => r.Task ?? "other").ToList();
        Dictionary<string, double> ByTask(IEnumerable<IReadOnlyList<(string Answer, double ExactMatch)>> runs)
        {
            var list = runs.ToList();
            return tasks.Distinct().Order(StringComparer.Ordinal).ToDictionary(t => t, t =>
                list.Average(run => run.Where((_, i) => tasks[i] == t).Average(e => e.ExactMatch)));
        }

        var (tEm, tRouge, tExamples) = Scoring.Evaluate(teacher, teacherEval, cancellationToken);
        rows.Add(MethodRow.From(TeacherRow, [tEm], [tRouge], [0]) with { ExactMatchByTask = ByTask([tExamples]) });
        var before = settings.Seeds.Select(seed =>
        {
            using var student = NewStudent(studentTokenizer, seed);
            return Scoring.Evaluate(student, studentEval, cancellationToken);
        }).ToList();
        rows.Add(MethodRow.From(StudentBeforeRow, [.. before.Select(b => b.ExactMatch)], [.. before.Select(b => b.RougeL)], [.. before.Select(_ => 0.0)])
            with { ExactMatchByTask = ByTask(before.Select(b => b.Examples)) });
        _log(string.Create(CultureInfo.InvariantCulture, $"teacher: EM {tEm:F1}, ROUGE-L {tRouge:F1}; student before: EM {rows[1].ExactMatch.Mean:F1}"));
        phases["score teacher + student before"] = Lap(clock);

        // 5. One fresh student per method and seed.
        var localTeacher = new LocalModelTeacher(teacher);
        foreach (var method in settings.Methods)
        {
            var em = new List<double>();
            var rouge = new List<double>();
            var seconds = new List<double>();
            var examples = new List<IReadOnlyList<(string Answer, double ExactMatch)>>();
            foreach (var seed in settings.Seeds)
            {
                cancellationToken.ThrowIfCancellationRequested();
                manual_seed(seed);
                using var student = NewStudent(studentTokenizer, seed);
                var (objective, data, withTeacher) = method switch
                {
                    "sft" => (Objectives.Create("sft"), sftSet, false),
                    "seqkd" => (Objectives.Create("sft"), seqkdSet, false),
                    "min_ed" => ((IDistillationObjective)new MinEdObjective(null, map, studentTokenizer, teacherTokenizer), minEdSet!, true),
                    _ => (Objectives.Create(method), crossSet, true),
                };
                var train = Stopwatch.StartNew();
                var result = Models.Train(student, objective, withTeacher ? localTeacher : null, data, settings.Steps, settings.BatchSize, settings.LearningRate, seed,
                    Path.Combine(output, "runs", $"{method}-seed{seed}"), cancellationToken: cancellationToken);
                seconds.Add(train.Elapsed.TotalSeconds);
                if (result.Status == TrainingStatus.Cancelled)
                {
                    throw new OperationCanceledException($"Cancelled while training {method} (seed {seed}).");
                }

                var score = Scoring.Evaluate(student, studentEval, cancellationToken);
                em.Add(score.ExactMatch);
                rouge.Add(score.RougeL);
                examples.Add(score.Examples);
                _log(string.Create(CultureInfo.InvariantCulture, $"{method} seed {seed}: EM {score.ExactMatch:F1}, ROUGE-L {score.RougeL:F1}, loss {result.LastLoss:F3} ({seconds[^1]:F1} s training)"));
            }

            rows.Add(MethodRow.From(method, em, rouge, seconds) with { ExactMatchByTask = ByTask(examples) });
            phases[method] = Lap(clock);
        }

        var report = new CrossTokenizerReport(rows, settings, stats, phases, wall.Elapsed.TotalSeconds, DateTime.UtcNow, Environment.ProcessorCount, Path.GetFileName(teacherDir))
        {
            TaskCounts = tasks.GroupBy(t => t).OrderBy(g => g.Key, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Count()),
        };
        report.Write(output);
        return report;
    }

    private CausalLM NewStudent(HfTokenizer tokenizer, int seed)
    {
        var student = AutoCausalLM.FromConfig(Models.Gpt2(tokenizer, settings.StudentLayers, settings.StudentHidden), seed);
        student.eval();
        return student;
    }

    private static double Lap(Stopwatch clock)
    {
        var s = clock.Elapsed.TotalSeconds;
        clock.Restart();
        return Math.Round(s, 1);
    }
}
