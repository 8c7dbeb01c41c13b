using System.Globalization;
using System.Numerics;
using System.Text.RegularExpressions;
using Distill.Eval.Text;

namespace Distill.Eval.Metrics;

/// <summary>How <see cref="Gsm8k"/> reads the final answer out of a prediction.</summary>
public enum Gsm8kAnswerRule
{
    /// <summary>
    /// The first number after the last <c>####</c> if the prediction has one (GSM8K's own answer format, as the
    /// harness's strict match), else the prediction's last number (<c>-?[0-9][0-9,]*(\.[0-9]+)?</c>, commas removed);
    /// compared numerically with the reference answer.
    /// </summary>
    FinalNumber,

    /// <summary>
    /// SDFT's <c>check_math</c>: <c>int(find_last_integer(reference)) == int(find_last_integer(prediction.strip()))</c>,
    /// with all its quirks (a non-zero fractional part gives the INVALID value −999999999, two INVALIDs compare equal,
    /// an int() failure counts as wrong). See <see cref="Gsm8k.FindLastInteger"/>.
    /// </summary>
    SdftFindLastInteger,
}

/// <summary>GSM8K final-answer extraction and comparison.</summary>
public static partial class Gsm8k
{
    /// <summary>The INVALID value SDFT's <c>find_last_integer</c> returns.</summary>
    public const string InvalidInteger = "-999999999";

    /// <summary>
    /// The reference's final answer: the first number after the last <c>####</c> (GSM8K's answer format; the trimmed
    /// text there if it holds no number), without thousands commas; for a reference without <c>####</c>, its last number.
    /// </summary>
    /// <param name="reference">A GSM8K answer field (worked solution ending in <c>#### N</c>) or a bare answer.</param>
    /// <returns>The answer text, or <see langword="null"/> when the reference holds no answer.</returns>
    public static string? ExtractReferenceAnswer(string reference)
    {
        ArgumentNullException.ThrowIfNull(reference);
        var marker = reference.LastIndexOf("####", StringComparison.Ordinal);
        if (marker >= 0)
        {
            // GSM8K writes "#### 1,200"; take the first number there, or the raw text when it is not numeric.
            var first = LastNumberRegex().Match(reference, marker + 4);
            var answer = first.Success ? first.Value : reference[(marker + 4)..].Trim();
            answer = answer.Replace(",", string.Empty, StringComparison.Ordinal);
            return answer.Length > 0 ? answer : null;
        }

        return LastNumber(reference);
    }

    /// <summary>The prediction's final number under <see cref="Gsm8kAnswerRule.FinalNumber"/>.</summary>
    /// <param name="prediction">A generated solution.</param>
    /// <returns>The number without commas, or <see langword="null"/> when there is none.</returns>
    public static string? ExtractPredictedAnswer(string prediction)
    {
        ArgumentNullException.ThrowIfNull(prediction);
        var marker = prediction.LastIndexOf("####", StringComparison.Ordinal);
        if (marker >= 0)
        {
            var first = LastNumberRegex().Match(prediction, marker + 4);
            if (first.Success)
            {
                return first.Value.Replace(",", string.Empty, StringComparison.Ordinal);
            }
        }

        return LastNumber(prediction);
    }

    /// <summary>
    /// SDFT's <c>find_last_integer</c> (eval/utils.py): the last match of <c>-?\d+(?:[,\s]\d+)*(?:\.\d+)?</c> with
    /// "," and " " removed; a non-zero fractional part or no match gives <see cref="InvalidInteger"/>, a zero one is
    /// dropped. Python semantics: <c>\d</c> and <c>\s</c> are Unicode classes.
    /// </summary>
    /// <param name="text">Any text.</param>
    /// <returns>The integer text (may still contain other whitespace, e.g. "1\n2", which <c>int()</c> rejects).</returns>
    public static string FindLastInteger(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var matches = SdftIntegerRegex().Matches(text);
        if (matches.Count == 0)
        {
            return InvalidInteger;
        }

        var s = matches[^1].Value.Replace(",", string.Empty, StringComparison.Ordinal).Replace(" ", string.Empty, StringComparison.Ordinal);
        var dot = s.IndexOf('.', StringComparison.Ordinal);
        if (dot < 0)
        {
            return s;
        }

        // int(fraction) != 0: the fraction is all digits here, so "non-zero" means some digit is not 0.
        foreach (var c in s.AsSpan(dot + 1))
        {
            if (CharUnicodeInfo.GetDecimalDigitValue(c) != 0)
            {
                return InvalidInteger;
            }
        }

        return s[..dot];
    }

    /// <summary>Whether the prediction's final answer equals the reference's under <paramref name="rule"/>.</summary>
    /// <param name="prediction">A generated solution.</param>
    /// <param name="reference">The reference answer (GSM8K <c>#### N</c> format or SDFT's "The answer is N.").</param>
    /// <param name="rule">The extraction rule.</param>
    /// <returns><see langword="true"/> when the answers agree.</returns>
    public static bool IsCorrect(string prediction, string reference, Gsm8kAnswerRule rule = Gsm8kAnswerRule.FinalNumber)
    {
        ArgumentNullException.ThrowIfNull(prediction);
        ArgumentNullException.ThrowIfNull(reference);
        switch (rule)
        {
            case Gsm8kAnswerRule.FinalNumber:
                var expected = ExtractReferenceAnswer(reference);
                var actual = ExtractPredictedAnswer(prediction);
                if (expected is null || actual is null)
                {
                    return false;
                }

                return TryParseDecimal(expected, out var e) && TryParseDecimal(actual, out var a)
                    ? e == a
                    : string.Equals(expected, actual, StringComparison.Ordinal);
            case Gsm8kAnswerRule.SdftFindLastInteger:
                return PythonInt(FindLastInteger(reference)) is { } r
                    && PythonInt(FindLastInteger(PythonStrip(prediction))) is { } p
                    && r == p;
            default:
                throw new ArgumentOutOfRangeException(nameof(rule), rule, "Unknown GSM8K answer rule.");
        }
    }

    /// <summary>Python <c>int(s)</c> on the strings <see cref="FindLastInteger"/> returns; <see langword="null"/> where Python raises ValueError.</summary>
    internal static BigInteger? PythonInt(string s)
    {
        var span = s.AsSpan();
        var start = 0;
        var end = span.Length;
        while (start < end && PythonText.IsSpace(span[start]))
        {
            start++;
        }

        while (end > start && PythonText.IsSpace(span[end - 1]))
        {
            end--;
        }

        span = span[start..end];
        var negative = false;
        if (span.Length > 0 && span[0] is '-' or '+')
        {
            negative = span[0] == '-';
            span = span[1..];
        }

        if (span.Length == 0)
        {
            return null;
        }

        // Python's int() accepts any Unicode decimal digit (Nd); the regex never yields underscores.
        var value = BigInteger.Zero;
        foreach (var c in span)
        {
            var digit = CharUnicodeInfo.GetDecimalDigitValue(c);
            if (digit < 0)
            {
                return null;
            }

            value = (value * 10) + digit;
        }

        return negative ? -value : value;
    }

    private static string PythonStrip(string s)
    {
        var start = 0;
        var end = s.Length;
        while (start < end && PythonText.IsSpace(s[start]))
        {
            start++;
        }

        while (end > start && PythonText.IsSpace(s[end - 1]))
        {
            end--;
        }

        return s[start..end];
    }

    private static string? LastNumber(string text)
    {
        var matches = LastNumberRegex().Matches(text);
        return matches.Count == 0 ? null : matches[^1].Value.Replace(",", string.Empty, StringComparison.Ordinal);
    }

    private static bool TryParseDecimal(string s, out decimal value) =>
        decimal.TryParse(s.TrimStart('$').TrimEnd('.'), NumberStyles.AllowLeadingSign | NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out value);

    // Python's \s on str patterns = str.isspace(), which adds U+001C..U+001F to .NET's \s.
    [GeneratedRegex(@"-?\d+(?:[,\s\u001C-\u001F]\d+)*(?:\.\d+)?")]
    private static partial Regex SdftIntegerRegex();

    [GeneratedRegex(@"-?[0-9][0-9,]*(?:\.[0-9]+)?")]
    private static partial Regex LastNumberRegex();
}

/// <summary>The <c>gsm8k_accuracy</c> metric: 1 when the final answer matches any reference, else 0.</summary>
/// <param name="rule">How the final answer is read (default <see cref="Gsm8kAnswerRule.FinalNumber"/>).</param>
public sealed class Gsm8kAccuracyMetric(Gsm8kAnswerRule rule = Gsm8kAnswerRule.FinalNumber) : IMetric
{
    /// <summary>The registered name, <c>gsm8k_accuracy</c>.</summary>
    public const string MetricName = "gsm8k_accuracy";

    /// <summary>Gets the answer-extraction rule.</summary>
    public Gsm8kAnswerRule Rule { get; } = rule;

    /// <inheritdoc />
    public string Name => MetricName;

    /// <inheritdoc />
    public double Score(string prediction, IReadOnlyList<string> references)
    {
        ArgumentNullException.ThrowIfNull(references);
        foreach (var reference in references)
        {
            if (Gsm8k.IsCorrect(prediction, reference, Rule))
            {
                return 1;
            }
        }

        return 0;
    }
}
