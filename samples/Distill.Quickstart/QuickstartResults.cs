using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Distill.IO;

namespace Distill.Quickstart;

/// <summary>Mean ± sample standard deviation (n − 1) of one measure over the training seeds, and the per-seed values.</summary>
/// <param name="Mean">The mean.</param>
/// <param name="Std">The sample standard deviation (0 for one value).</param>
/// <param name="PerSeed">The values, in seed order.</param>
public sealed record SeedStat(double Mean, double Std, IReadOnlyList<double> PerSeed)
{
    /// <summary>Summarises per-seed values.</summary>
    /// <param name="values">One value per seed.</param>
    /// <returns>Mean ± sample std.</returns>
    public static SeedStat Of(IReadOnlyList<double> values)
    {
        ArgumentNullException.ThrowIfNull(values);
        if (values.Count == 0)
        {
            throw new ArgumentException("No values to summarise.", nameof(values));
        }

        var mean = values.Average();
        var std = values.Count > 1 ? Math.Sqrt(values.Sum(v => (v - mean) * (v - mean)) / (values.Count - 1)) : 0;
        return new SeedStat(mean, std, [.. values]);
    }

    /// <summary>Formats as <c>mean ± std</c>.</summary>
    /// <param name="format">The numeric format of both numbers.</param>
    /// <returns>The text.</returns>
    public string Format(string format) =>
        PerSeed.Count > 1
            ? string.Create(CultureInfo.InvariantCulture, $"{Mean.ToString(format, CultureInfo.InvariantCulture)} ± {Std.ToString(format, CultureInfo.InvariantCulture)}")
            : Mean.ToString(format, CultureInfo.InvariantCulture);
}

/// <summary>One row of the quickstart table.</summary>
/// <param name="Key">The method key (<c>teacher</c>, <c>before</c>, or a <see cref="QuickstartMethod.Key"/>).</param>
/// <param name="Row">The row name.</param>
/// <param name="TrainingExamples">Training examples the row saw (labelled + teacher-answered), or 0.</param>
/// <param name="ExactMatch">Exact match (×100) of greedy answers on the test split.</param>
/// <param name="AnswerLoss">Teacher-forced mean token cross-entropy of the reference test answers.</param>
/// <param name="Agreement">Share (×100) of test prompts whose greedy answer equals the teacher's greedy answer exactly.</param>
/// <param name="Seconds">Training wall time of one run, in seconds (0 for rows without training).</param>
public sealed record QuickstartRow(string Key, string Row, int TrainingExamples, SeedStat ExactMatch, SeedStat AnswerLoss, SeedStat Agreement, SeedStat Seconds);

/// <summary>What the quickstart produced: the table, the regime and where things are.</summary>
/// <param name="Rows">Teacher, student before, then one row per method.</param>
/// <param name="Seeds">The training seeds.</param>
/// <param name="TestExamples">Held-out test examples scored per model.</param>
/// <param name="LabelledExamples">Labelled training examples.</param>
/// <param name="UnlabelledPrompts">Unlabelled prompts answered by the teacher.</param>
/// <param name="Steps">Optimizer steps of every student run.</param>
/// <param name="TeacherDirectory">The teacher's HF folder.</param>
/// <param name="TeacherAnswersFile">The JSONL of the teacher's answers to the unlabelled prompts.</param>
/// <param name="TeacherAnswersFromCache">Whether that file was reused from an earlier run.</param>
/// <param name="OutputDirectory">The run folder.</param>
/// <param name="Elapsed">Wall time of the whole run.</param>
public sealed record QuickstartReport(
    IReadOnlyList<QuickstartRow> Rows,
    IReadOnlyList<int> Seeds,
    int TestExamples,
    int LabelledExamples,
    int UnlabelledPrompts,
    int Steps,
    string TeacherDirectory,
    string? TeacherAnswersFile,
    bool TeacherAnswersFromCache,
    string OutputDirectory,
    TimeSpan Elapsed)
{
    /// <summary>The markdown table's file name in the run folder.</summary>
    public const string MarkdownFile = "results.md";

    /// <summary>The JSON results' file name in the run folder.</summary>
    public const string JsonFile = "results.json";

    private static readonly JsonSerializerOptions JsonOptions = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    /// <summary>Gets the share (×100) of the unlabelled prompts whose teacher answer equals the hidden reference (how clean SeqKD's data is), or null.</summary>
    public double? TeacherAnswersExactMatch { get; init; }

    /// <summary>Gets a row by key.</summary>
    /// <param name="key">The row's <see cref="QuickstartRow.Key"/>.</param>
    /// <returns>The row.</returns>
    public QuickstartRow this[string key] => Rows.Single(r => r.Key == key);

    /// <summary>Renders the table as markdown (one row per method; mean ± sample std over the seeds).</summary>
    /// <returns>The markdown table.</returns>
    public string ToMarkdown()
    {
        var sb = new StringBuilder();
        sb.AppendLine("| method | train examples | EM (test) | answer loss | agreement with teacher | train time (s) |");
        sb.AppendLine("|---|---|---|---|---|---|");
        foreach (var r in Rows)
        {
            sb.AppendLine(CultureInfo.InvariantCulture, $"| {r.Row} | {(r.TrainingExamples > 0 ? r.TrainingExamples.ToString(CultureInfo.InvariantCulture) : "—")} | {r.ExactMatch.Format("F1")} | {r.AnswerLoss.Format("F3")} | {r.Agreement.Format("F1")} | {(r.Seconds.Mean > 0 ? r.Seconds.Format("F0") : "—")} |");
        }

        return sb.ToString();
    }

    /// <summary>Serialises the report to JSON (snake_case keys).</summary>
    /// <returns>Indented JSON.</returns>
    public string ToJson() => JsonSerializer.Serialize(this, JsonOptions);

    /// <summary>Writes <see cref="MarkdownFile"/> and <see cref="JsonFile"/> into <see cref="OutputDirectory"/>, each atomically.</summary>
    public void Write()
    {
        var header = string.Create(CultureInfo.InvariantCulture, $"Distill quickstart: {TestExamples} test examples, {LabelledExamples} labelled + {UnlabelledPrompts} unlabelled training prompts, {Steps} steps per run, seeds {string.Join(", ", Seeds)} (mean ± sample std).{(TeacherAnswersExactMatch is double t ? $" The teacher's answers equal {t:F1} % of the hidden answers of the unlabelled prompts." : "")}\n\n");
        AtomicFile.WriteAllText(Path.Combine(OutputDirectory, MarkdownFile), header + ToMarkdown());
        AtomicFile.WriteAllText(Path.Combine(OutputDirectory, JsonFile), ToJson());
    }
}
