using System.Text.RegularExpressions;
using Distill.Data.Synthesis;

namespace Distill.Eval.Metrics;

/// <summary>
/// The official SDFT answer checks (<c>eval/eval_math.py</c>, <c>eval_openfunction.py</c>, <c>eval_magicoder.py</c>), used both
/// to filter rewrites (<see cref="SdftFilter"/>) and to score the task.
/// </summary>
public static partial class SdftAnswerChecks
{
    /// <summary>The start phrases <c>check_magicoder</c> accepts (case-sensitive).</summary>
    public static IReadOnlyList<string> CodeStarts { get; } = ["I have", "Here is", "I implemented"];

    /// <summary>The answer check of a task kind, or <see langword="null"/> for <see cref="SdftTaskKind.General"/>.</summary>
    /// <param name="kind">The task kind.</param>
    /// <param name="branch">The branch (decides OpenFunctions' partial credit).</param>
    /// <returns>The check.</returns>
    public static ISdftAnswerCheck? For(SdftTaskKind kind, SdftBranch branch) => kind switch
    {
        SdftTaskKind.General => null,
        SdftTaskKind.Math => new Check((reference, rewrite) => CheckMath(reference, rewrite)),
        SdftTaskKind.Code => new Check((_, rewrite) => CheckMagicoder(rewrite)),
        SdftTaskKind.OpenFunction => new Check((reference, rewrite) => CheckOpenFunction(reference, rewrite, branch) > 0),
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "Unknown SDFT task kind."),
    };

    /// <summary><c>check_math</c>: <c>int(find_last_integer(label)) == int(find_last_integer(predict.strip()))</c>, false where <c>int()</c> fails.</summary>
    /// <param name="reference">The reference (label).</param>
    /// <param name="prediction">The prediction.</param>
    /// <returns>Whether the final integers agree (two INVALIDs agree, as in the official code).</returns>
    public static bool CheckMath(string reference, string prediction) =>
        Gsm8k.IsCorrect(prediction, reference, Gsm8kAnswerRule.SdftFindLastInteger);

    /// <summary><c>check_magicoder</c>: the stripped answer contains <c>```python</c> and starts with one of <see cref="CodeStarts"/>.</summary>
    /// <param name="prediction">The prediction.</param>
    /// <returns>Whether it passes.</returns>
    public static bool CheckMagicoder(string prediction)
    {
        ArgumentNullException.ThrowIfNull(prediction);
        var answer = PythonStrip(prediction);
        return answer.Contains("```python", StringComparison.Ordinal) && CodeStarts.Any(s => answer.StartsWith(s, StringComparison.Ordinal));
    }

    /// <summary>
    /// <c>check_openfunction</c>: 1 when the standardised prediction contains <c>\bfunc(params)</c> of the standardised reference;
    /// on <see cref="SdftBranch.Reproduce"/> otherwise 0.5 when the prediction's first parenthesised argument list has as many
    /// comma-separated parts as the reference and each contains the reference's value (the function name is not checked), else 0.
    /// </summary>
    /// <param name="reference">The reference call, e.g. <c>coffee_shop.find_nearby(location="San Francisco")</c>.</param>
    /// <param name="prediction">The prediction.</param>
    /// <param name="branch">The branch.</param>
    /// <returns>1, 0.5 or 0.</returns>
    /// <exception cref="InvalidDataException">The reference is not a function call (the official code raises ValueError).</exception>
    public static double CheckOpenFunction(string reference, string prediction, SdftBranch branch = SdftBranch.Reproduce)
    {
        ArgumentNullException.ThrowIfNull(reference);
        ArgumentNullException.ThrowIfNull(prediction);
        var target = Standardize(reference);
        var answer = Standardize(prediction);
        var match = CallRegex().Match(target);
        if (!match.Success)
        {
            throw new InvalidDataException($"Target function call is not in the correct format: {target}");
        }

        var name = match.Groups[1].Value;
        var parameters = match.Groups[2].Value;
        if (Regex.IsMatch(answer, @"\b" + Regex.Escape(name) + @"\(" + Regex.Escape(parameters) + @"\)", RegexOptions.CultureInvariant))
        {
            return 1;
        }

        if (branch == SdftBranch.Main)
        {
            return 0;
        }

        // answer[max(answer.find('(') + 1, 0):answer.find(')')] with Python slice semantics (find = -1 → end is len - 1).
        var open = answer.IndexOf('(', StringComparison.Ordinal);
        var close = answer.IndexOf(')', StringComparison.Ordinal);
        var start = Math.Max(open + 1, 0);
        var end = close >= 0 ? close : Math.Max(answer.Length - 1, 0);
        var part = end > start ? answer[start..end] : string.Empty;
        var referenceParts = parameters.Split(',');
        var answerParts = part.Split(',');
        if (referenceParts.Length != answerParts.Length)
        {
            return 0;
        }

        for (var i = 0; i < referenceParts.Length; i++)
        {
            var pieces = referenceParts[i].Split('=');
            if (pieces.Length < 2 || !answerParts[i].Contains(pieces[1], StringComparison.Ordinal))
            {
                return 0;
            }
        }

        return 0.5;
    }

    /// <summary><c>standardize_function_call</c>: strip, collapse whitespace runs to one space, <c>'</c> → <c>"</c>, <c>", "</c> → <c>","</c>.</summary>
    /// <param name="call">The text.</param>
    /// <returns>The standardised text.</returns>
    public static string Standardize(string call)
    {
        ArgumentNullException.ThrowIfNull(call);
        return WhitespaceRegex().Replace(PythonStrip(call), " ").Replace('\'', '"').Replace(", ", ",", StringComparison.Ordinal);
    }

    private static string PythonStrip(string s)
    {
        var start = 0;
        var end = s.Length;
        while (start < end && Text.PythonText.IsSpace(s[start]))
        {
            start++;
        }

        while (end > start && Text.PythonText.IsSpace(s[end - 1]))
        {
            end--;
        }

        return s[start..end];
    }

    // Python's \s (str.isspace) adds U+001C..U+001F to .NET's \s.
    [GeneratedRegex(@"[\s\u001C-\u001F]+")]
    private static partial Regex WhitespaceRegex();

    // re.match: anchored at the start only; '.' does not match '\n' (none is left after standardising).
    [GeneratedRegex(@"^([a-zA-Z_][a-zA-Z0-9_]*(?:\.[a-zA-Z_][a-zA-Z0-9_]*)*)\((.*)\)")]
    private static partial Regex CallRegex();

    private sealed class Check(Func<string, string, bool> passes) : ISdftAnswerCheck
    {
        public bool Passes(string reference, string rewrite) => passes(reference, rewrite);
    }
}
