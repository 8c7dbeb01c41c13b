using System.Globalization;
using System.Text;
using System.Text.Json;
using Distill.IO;

namespace Distill.CrossTokenizer;

/// <summary>A mean and sample standard deviation over seeds, with the per-seed values.</summary>
/// <param name="Mean">The mean.</param>
/// <param name="Std">The sample standard deviation (n − 1; 0 for one value).</param>
/// <param name="PerSeed">The values, in seed order.</param>
public sealed record SeedStat(double Mean, double Std, IReadOnlyList<double> PerSeed)
{
    /// <summary>Summarises <paramref name="values"/>.</summary>
    /// <param name="values">One value per seed.</param>
    /// <returns>Mean, sample std and the values.</returns>
    public static SeedStat Of(IReadOnlyList<double> values)
    {
        var mean = values.Average();
        var std = values.Count < 2 ? 0 : Math.Sqrt(values.Sum(v => (v - mean) * (v - mean)) / (values.Count - 1));
        return new SeedStat(mean, std, values);
    }

    /// <summary>Formats as <c>mean ± std</c> with one decimal.</summary>
    /// <returns>The text.</returns>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{Mean:F1} ± {Std:F1}");
}

/// <summary>One row of the table.</summary>
/// <param name="Method">The row name (teacher, student before, or a method).</param>
/// <param name="ExactMatch">DSKD exact match (×100) over seeds.</param>
/// <param name="RougeL">ROUGE-L F (×100) over seeds.</param>
/// <param name="TrainSeconds">Training wall seconds per seed (0 for the teacher and the untrained student).</param>
public sealed record MethodRow(string Method, SeedStat ExactMatch, SeedStat RougeL, SeedStat TrainSeconds)
{
    /// <summary>Gets the exact match (×100, mean over seeds) per bundled task family of the scored rows.</summary>
    public IReadOnlyDictionary<string, double> ExactMatchByTask { get; init; } = new Dictionary<string, double>();

    /// <summary>Builds a row from per-seed values.</summary>
    /// <param name="method">The row name.</param>
    /// <param name="em">EM per seed.</param>
    /// <param name="rouge">ROUGE-L per seed.</param>
    /// <param name="seconds">Training seconds per seed.</param>
    /// <returns>The row.</returns>
    public static MethodRow From(string method, IReadOnlyList<double> em, IReadOnlyList<double> rouge, IReadOnlyList<double> seconds) =>
        new(method, SeedStat.Of(em), SeedStat.Of(rouge), SeedStat.Of(seconds));
}

/// <summary>What became of the teacher's answers to the unlabelled prompts.</summary>
/// <param name="Generated">Prompts answered.</param>
/// <param name="Kept">Answers trained on (stopped with EOS, not empty).</param>
/// <param name="HitTokenLimit">Answers that ran to the token limit without EOS (dropped).</param>
/// <param name="Empty">Empty answers (dropped).</param>
/// <param name="MatchLabel">Share (%) of the prompts whose kept answer equals the prompt's hidden label (never used for training).</param>
/// <param name="CacheFile">The JSONL file in the run folder.</param>
/// <param name="FromCache">Whether the file was reused from an earlier run.</param>
public sealed record TeacherAnswerStats(int Generated, int Kept, int HitTokenLimit, int Empty, double MatchLabel, string CacheFile, bool FromCache);

/// <summary>The comparison's result: the table, the settings, the teacher-answer statistics and the time per phase.</summary>
/// <param name="Rows">Teacher, student before, then one row per method.</param>
/// <param name="Settings">The settings of the run.</param>
/// <param name="TeacherAnswers">The SeqKD statistics.</param>
/// <param name="PhaseSeconds">Wall seconds per phase, in order.</param>
/// <param name="TotalSeconds">Wall seconds of the whole run.</param>
/// <param name="FinishedUtc">When the run finished.</param>
/// <param name="LogicalProcessors">Logical processors of the machine.</param>
/// <param name="Teacher">The teacher folder's name.</param>
public sealed record CrossTokenizerReport(
    IReadOnlyList<MethodRow> Rows,
    CrossTokenizerSettings Settings,
    TeacherAnswerStats TeacherAnswers,
    IReadOnlyDictionary<string, double> PhaseSeconds,
    double TotalSeconds,
    DateTime FinishedUtc,
    int LogicalProcessors,
    string Teacher)
{
    /// <summary>The markdown file of the table in the run folder.</summary>
    public const string MarkdownFile = "results.md";

    /// <summary>The JSON file of the report in the run folder.</summary>
    public const string JsonFile = "results.json";

    /// <summary>Gets the number of scored rows per bundled task family.</summary>
    public IReadOnlyDictionary<string, int> TaskCounts { get; init; } = new Dictionary<string, int>();

    /// <summary>Gets a row by name.</summary>
    /// <param name="method">The row name.</param>
    /// <returns>The row.</returns>
    public MethodRow this[string method] => Rows.Single(r => r.Method == method);

    /// <summary>Renders the table and its legend as markdown.</summary>
    /// <returns>The markdown.</returns>
    public string ToMarkdown()
    {
        var s = Settings;
        var sb = new StringBuilder();
        var inv = CultureInfo.InvariantCulture;
        sb.AppendLine(inv, $"Cross-tokenizer distillation, bundled data: teacher `{Teacher}` (BPE, 512 ids) → {s.StudentLayers}×{s.StudentHidden} GPT-2 student (bytes, 257 ids); {s.Labelled} labelled rows + {TeacherAnswers.Kept} teacher answers to {TeacherAnswers.Generated} unlabelled prompts; {s.Steps} steps × batch {s.BatchSize}, lr {s.LearningRate}; greedy answers on {TaskCounts.Values.Sum()} {s.Split} rows of the task families {(s.Tasks.Count == 0 ? "(all)" : string.Join(", ", s.Tasks))}; mean ± std over seeds {string.Join(", ", s.Seeds)}.");
        sb.AppendLine();
        sb.AppendLine("| row | EM | ROUGE-L | train s / seed |");
        sb.AppendLine("|---|---|---|---|");
        foreach (var r in Rows)
        {
            var seconds = r.TrainSeconds.Mean > 0 ? r.TrainSeconds.Mean.ToString("F1", inv) : "—";
            sb.AppendLine(inv, $"| {r.Method} | {r.ExactMatch} | {r.RougeL} | {seconds} |");
        }

        var tasks = Rows[0].ExactMatchByTask.Keys.ToList();
        if (tasks.Count > 0)
        {
            sb.AppendLine();
            sb.AppendLine(inv, $"EM per task family (mean over seeds; rows per family: {string.Join(", ", tasks.Select(t => $"{t} {TaskCounts.GetValueOrDefault(t)}"))}):");
            sb.AppendLine();
            sb.AppendLine("| row | " + string.Join(" | ", tasks) + " |");
            sb.AppendLine("|---|" + string.Concat(tasks.Select(_ => "---|")));
            foreach (var r in Rows)
            {
                sb.AppendLine(inv, $"| {r.Method} | {string.Join(" | ", tasks.Select(t => r.ExactMatchByTask.GetValueOrDefault(t).ToString("F0", inv)))} |");
            }
        }

        sb.AppendLine();
        foreach (var r in Rows)
        {
            if (CrossTokenizerPipeline.Descriptions.TryGetValue(r.Method, out var d))
            {
                sb.AppendLine(inv, $"- {r.Method}: {d}");
            }
        }

        sb.AppendLine();
        var t = TeacherAnswers;
        sb.AppendLine(inv, $"Teacher answers: {t.Kept}/{t.Generated} kept ({t.HitTokenLimit} ran to the token limit, {t.Empty} empty; both dropped), {t.MatchLabel:F1} % of the prompts answered with their hidden label ({t.CacheFile}{(t.FromCache ? ", from cache" : string.Empty)}).");
        sb.AppendLine(inv, $"Wall time {TotalSeconds:F0} s on {LogicalProcessors} logical CPUs ({FinishedUtc:yyyy-MM-dd HH:mm} UTC): {string.Join(", ", PhaseSeconds.Select(p => $"{p.Key} {p.Value:F0} s"))}.");
        return sb.ToString();
    }

    /// <summary>Writes <see cref="MarkdownFile"/> and <see cref="JsonFile"/> into <paramref name="directory"/> (atomically).</summary>
    /// <param name="directory">The run folder.</param>
    public void Write(string directory)
    {
        AtomicFile.WriteAllText(Path.Combine(directory, MarkdownFile), ToMarkdown());
        AtomicFile.WriteAllText(Path.Combine(directory, JsonFile), JsonSerializer.Serialize(this, new JsonSerializerOptions { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.CamelCase }) + "\n");
    }
}
