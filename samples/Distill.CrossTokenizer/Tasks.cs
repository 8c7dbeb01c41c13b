using Distill.Data;

namespace Distill.CrossTokenizer;

/// <summary>Which bundled task families the sample uses.</summary>
public static class Tasks
{
    /// <summary>
    /// The families a sub-million-parameter model learns in minutes (the quickstart's default): <c>uppercase</c>, <c>count</c>,
    /// <c>capital</c>, <c>opposite</c>, <c>multiply</c> (408 training, 55 dev and 41 test rows). The 2-digit <c>add</c>/<c>subtract</c>
    /// rows (70 % of the data) and <c>reverse</c>/<c>sort</c> are left out: a 4×128 BPE teacher trained on every family for 3 000
    /// steps reached only 4.5 dev EM, because BPE makes 2-digit numbers single tokens and hides the letters of a word.
    /// </summary>
    public static IReadOnlyList<string> Learnable { get; } = ["uppercase", "count", "capital", "opposite", "multiply"];

    /// <summary>Loads a split's rows of the given families (all rows when <paramref name="families"/> is empty), in file order.</summary>
    /// <param name="split">The split.</param>
    /// <param name="families">Task families; empty = all.</param>
    /// <returns>The rows.</returns>
    public static List<InstructionExample> Load(BundledSplit split, IReadOnlyList<string> families) =>
        [.. BundledData.Load(split).Where(e => families.Count == 0 || (e.Task is { } t && families.Contains(t)))];

    /// <summary>Parses <c>--tasks</c>: a comma list, or <c>all</c>.</summary>
    /// <param name="value">The option's items.</param>
    /// <returns>The families (empty = all).</returns>
    public static IReadOnlyList<string> Parse(IReadOnlyList<string> value) => value.Contains("all") ? [] : value;
}
