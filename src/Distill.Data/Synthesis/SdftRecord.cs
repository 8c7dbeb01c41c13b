using System.Text.Json.Serialization;

namespace Distill.Data.Synthesis;

/// <summary>Why an SDFT row kept the rewrite or fell back to the original response.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<SdftReason>))]
public enum SdftReason
{
    /// <summary>The rewrite passed every check and replaces the original response.</summary>
    Kept,

    /// <summary>The rewrite is empty or whitespace only (the official code keeps it; Distill falls back unless <see cref="SdftOptions.RejectEmpty"/> is off).</summary>
    Empty,

    /// <summary>Generation hit <see cref="SdftOptions.MaxNewTokens"/> before EOS (the official code keeps it; Distill falls back unless <see cref="SdftOptions.RejectTruncated"/> is off).</summary>
    Truncated,

    /// <summary>The rewrite contains an excluded phrase ("reference answer", "your response", ...) or starts with "Your turn" (official <c>verify</c>).</summary>
    BadWord,

    /// <summary>Math: the rewrite's final integer differs from the reference's (official <c>check_math</c>).</summary>
    WrongAnswer,

    /// <summary>Code or function calling: the rewrite fails <c>check_magicoder</c> / <c>check_openfunction</c>.</summary>
    WrongFormat,
}

/// <summary>One row of the distilled JSONL file: the original, the seed model's rewrite, what is trained on, and why.</summary>
/// <param name="Index">The row's position in the source dataset (0-based).</param>
/// <param name="Instruction">The instruction.</param>
/// <param name="Input">The input (may be empty).</param>
/// <param name="Original">The original response (stripped, as the official code strips every field).</param>
/// <param name="Rewrite">The seed model's rewrite (decoded without special tokens, stripped).</param>
/// <param name="Final">The training response: <see cref="Rewrite"/> when <see cref="Reason"/> is <see cref="SdftReason.Kept"/>, else <see cref="Original"/>.</param>
/// <param name="Reason">Why the rewrite was kept or rejected.</param>
public sealed record SdftRecord(
    [property: JsonPropertyName("index")] int Index,
    [property: JsonPropertyName("instruction")] string Instruction,
    [property: JsonPropertyName("input")] string Input,
    [property: JsonPropertyName("original")] string Original,
    [property: JsonPropertyName("rewrite")] string Rewrite,
    [property: JsonPropertyName("final")] string Final,
    [property: JsonPropertyName("reason")] SdftReason Reason)
{
    /// <summary>Gets the row as an instruction example whose output is <see cref="Final"/> (what SDFT fine-tunes on).</summary>
    /// <returns>The example.</returns>
    public InstructionExample ToExample() => new(Instruction, Input, Final);
}

/// <summary>Counts of an SDFT run per <see cref="SdftReason"/>.</summary>
/// <param name="Counts">Rows per reason (every reason present, zero included).</param>
public sealed record SdftStatistics(IReadOnlyDictionary<SdftReason, int> Counts)
{
    /// <summary>Gets the number of rows.</summary>
    public int Total => Counts.Values.Sum();

    /// <summary>Gets the rows that kept the rewrite.</summary>
    public int Kept => Counts[SdftReason.Kept];

    /// <summary>Gets the rows that fell back to the original response.</summary>
    public int Rejected => Total - Kept;

    /// <summary>Counts the reasons of <paramref name="records"/>.</summary>
    /// <param name="records">The rows.</param>
    /// <returns>The statistics.</returns>
    public static SdftStatistics From(IEnumerable<SdftRecord> records)
    {
        ArgumentNullException.ThrowIfNull(records);
        var counts = Enum.GetValues<SdftReason>().ToDictionary(r => r, _ => 0);
        foreach (var r in records)
        {
            counts[r.Reason]++;
        }

        return new SdftStatistics(counts);
    }

    /// <inheritdoc />
    public override string ToString() =>
        $"{Total} rows: " + string.Join(", ", Counts.Select(c => $"{c.Key} {c.Value}"));
}
