using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Distill.IO;

namespace Distill.Atkd;

/// <summary>A value over training seeds: mean ± standard deviation (population, as <c>SeededEvaluator</c> reports by default).</summary>
/// <param name="Mean">The mean.</param>
/// <param name="Std">The standard deviation.</param>
/// <param name="PerSeed">The values, in seed order.</param>
public sealed record SeedStat(double Mean, double Std, IReadOnlyList<double> PerSeed)
{
    /// <summary>Aggregates per-seed values.</summary>
    /// <param name="values">The values.</param>
    /// <returns>Mean and population standard deviation.</returns>
    public static SeedStat From(IReadOnlyList<double> values)
    {
        var mean = values.Average();
        return new SeedStat(mean, Math.Sqrt(values.Sum(v => (v - mean) * (v - mean)) / values.Count), values);
    }

    /// <summary>Formats as <c>mean ± std</c>.</summary>
    /// <param name="format">The number format.</param>
    /// <returns>The text.</returns>
    public string Format(string format) =>
        Mean.ToString(format, CultureInfo.InvariantCulture) + " ± " + Std.ToString(format, CultureInfo.InvariantCulture);
}

/// <summary>One row of the table: a sample source (or the teacher) over the seeds.</summary>
/// <param name="Source">The ATKD source name, or <c>teacher (reference)</c>.</param>
/// <param name="ExactMatch">DSKD exact match (×100) of greedy answers on the test examples (the task metric).</param>
/// <param name="RougeL">ROUGE-L F (×100) of the same answers (partial credit, for tiny models whose exact match is near 0).</param>
/// <param name="AnswerLoss">Teacher-forced mean token cross-entropy of the reference answers.</param>
/// <param name="Agreement">Share (×100) of answer positions where the student's argmax equals the teacher's; null for the teacher.</param>
/// <param name="Seconds">Training wall time per run; null for the teacher.</param>
/// <param name="GeneratedBatches">Share (×100) of micro-batches whose responses were generated during training (by the student, or student and teacher for mix_token).</param>
public sealed record AtkdRow(string Source, SeedStat ExactMatch, SeedStat RougeL, SeedStat AnswerLoss, SeedStat? Agreement, SeedStat? Seconds, double GeneratedBatches);

/// <summary>The result of <see cref="AtkdComparison.Run"/>.</summary>
/// <param name="Rows">The teacher's row, then one row per source.</param>
/// <param name="Seeds">The training seeds.</param>
/// <param name="TestExamples">Test examples scored per model.</param>
/// <param name="TrainPrompts">Training prompts (the teacher answered each).</param>
/// <param name="TeacherAnswers">Rows of the teacher-answer file (prompts with an empty answer are dropped).</param>
/// <param name="Steps">Optimizer steps per run.</param>
/// <param name="Teacher">Where the teacher came from.</param>
/// <param name="TeacherAnswersFile">The SeqKD file the <c>teacher</c> and <c>mix_request_teacher</c> sources train on.</param>
/// <param name="Elapsed">Wall time of the whole run.</param>
public sealed record AtkdReport(
    IReadOnlyList<AtkdRow> Rows,
    IReadOnlyList<int> Seeds,
    int TestExamples,
    int TrainPrompts,
    int TeacherAnswers,
    int Steps,
    string Teacher,
    string TeacherAnswersFile,
    TimeSpan Elapsed)
{
    /// <summary>The Markdown table's file name in the run folder.</summary>
    public const string MarkdownFile = "results.md";

    /// <summary>The JSON results' file name in the run folder.</summary>
    public const string JsonFile = "results.json";

    private static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    /// <summary>Renders the table as Markdown.</summary>
    /// <returns>The Markdown text.</returns>
    public string ToMarkdown()
    {
        var sb = new StringBuilder();
        sb.AppendLine(CultureInfo.InvariantCulture, $"ATKD objective, one row per sample source: {TestExamples} test examples, {TrainPrompts} training prompts ({TeacherAnswers} teacher answers), {Steps} steps, seeds {string.Join(", ", Seeds)} (mean ± std).");
        sb.AppendLine();
        sb.AppendLine("| source | EM (test) | ROUGE-L (test) | answer loss | agreement with teacher (%) | generated batches (%) | train time (s) |");
        sb.AppendLine("|---|---|---|---|---|---|---|");
        foreach (var r in Rows)
        {
            sb.AppendLine(CultureInfo.InvariantCulture, $"| {r.Source} | {r.ExactMatch.Format("F1")} | {r.RougeL.Format("F1")} | {r.AnswerLoss.Format("F3")} | {r.Agreement?.Format("F1") ?? "—"} | {(r.Seconds is null ? "—" : r.GeneratedBatches.ToString("F0", CultureInfo.InvariantCulture))} | {r.Seconds?.Format("F1") ?? "—"} |");
        }

        sb.AppendLine();
        sb.AppendLine(CultureInfo.InvariantCulture, $"Teacher: {Teacher}. Total time {Elapsed:mm\\:ss}.");
        return sb.ToString();
    }

    /// <summary>Writes <see cref="MarkdownFile"/> and <see cref="JsonFile"/> into <paramref name="directory"/> (atomically).</summary>
    /// <param name="directory">The run folder.</param>
    public void Write(string directory)
    {
        AtomicFile.WriteAllText(Path.Combine(directory, MarkdownFile), ToMarkdown());
        AtomicFile.WriteAllText(Path.Combine(directory, JsonFile), JsonSerializer.Serialize(this, Json));
    }
}
