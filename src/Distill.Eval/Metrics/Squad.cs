using System.Text;
using Distill.Eval.Text;

namespace Distill.Eval.Metrics;

/// <summary>
/// Exact match and token F1 of the official SQuAD v1.1 evaluation script (<c>evaluate-v1.1.py</c>), with its
/// answer normalisation, plus the DSKD/MiniLLM exact-match variant that keeps articles.
/// </summary>
/// <remarks>
/// <c>normalize_answer</c>: Python <c>lower()</c>; remove ASCII punctuation (<c>string.punctuation</c>); replace the
/// whole words a/an/the (Python <c>re</c> <c>\b</c>, Unicode word characters) with a space; collapse whitespace
/// (<c>str.split()</c>). So "The A-Team" → "ateam". F1 counts the multiset intersection of normalised tokens and is 0
/// when nothing is shared — including when both answers normalise to empty, where EM is 1 (the script's quirk).
/// </remarks>
public static class Squad
{
    private const string AsciiPunctuation = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

    /// <summary>The official <c>normalize_answer</c>.</summary>
    /// <param name="text">An answer.</param>
    /// <param name="removeArticles">Whether to remove a/an/the (SQuAD: yes; DSKD/MiniLLM <c>exact_match</c>: no).</param>
    /// <returns>The normalised answer: tokens joined by single spaces.</returns>
    public static string NormalizeAnswer(string text, bool removeArticles = true)
    {
        ArgumentNullException.ThrowIfNull(text);
        var lower = PythonText.Lower(text);
        var sb = new StringBuilder(lower.Length);
        foreach (var c in lower)
        {
            if (!AsciiPunctuation.Contains(c, StringComparison.Ordinal))
            {
                sb.Append(c);
            }
        }

        var noPunctuation = sb.ToString();
        var noArticles = removeArticles ? RemoveArticles(noPunctuation) : noPunctuation;
        return string.Join(' ', PythonText.Split(noArticles));
    }

    /// <summary>Official <c>exact_match_score</c>: 1 when the normalised answers are equal, else 0.</summary>
    /// <param name="prediction">The prediction.</param>
    /// <param name="truth">One reference answer.</param>
    /// <param name="removeArticles">Whether normalisation removes articles.</param>
    /// <returns>1 or 0.</returns>
    public static double ExactMatch(string prediction, string truth, bool removeArticles = true) =>
        string.Equals(NormalizeAnswer(prediction, removeArticles), NormalizeAnswer(truth, removeArticles), StringComparison.Ordinal) ? 1 : 0;

    /// <summary>Official <c>f1_score</c>: token-multiset F1 of the normalised answers.</summary>
    /// <param name="prediction">The prediction.</param>
    /// <param name="truth">One reference answer.</param>
    /// <returns>F1 in [0, 1]; 0 when no token is shared (also when both are empty).</returns>
    public static double F1(string prediction, string truth)
    {
        var predictionTokens = PythonText.Split(NormalizeAnswer(prediction));
        var truthTokens = PythonText.Split(NormalizeAnswer(truth));
        var truthCounts = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var t in truthTokens)
        {
            truthCounts[t] = truthCounts.GetValueOrDefault(t) + 1;
        }

        var same = 0;
        foreach (var t in predictionTokens)
        {
            if (truthCounts.TryGetValue(t, out var left) && left > 0)
            {
                truthCounts[t] = left - 1;
                same++;
            }
        }

        if (same == 0)
        {
            return 0;
        }

        var precision = (double)same / predictionTokens.Count;
        var recall = (double)same / truthTokens.Count;
        return 2 * precision * recall / (precision + recall);
    }

    /// <summary>The best score over several references (<c>metric_max_over_ground_truths</c>); 0 for none.</summary>
    internal static double Max(Func<string, string, double> metric, string prediction, IReadOnlyList<string> references)
    {
        ArgumentNullException.ThrowIfNull(references);
        var best = 0.0;
        foreach (var reference in references)
        {
            best = Math.Max(best, metric(prediction, reference));
        }

        return best;
    }

    // re.sub(r"\b(a|an|the)\b", " ", text) with Python's Unicode \w.
    private static string RemoveArticles(string text)
    {
        var sb = new StringBuilder(text.Length);
        var i = 0;
        while (i < text.Length)
        {
            var length = ArticleAt(text, i);
            if (length > 0)
            {
                sb.Append(' ');
                i += length;
            }
            else
            {
                sb.Append(text[i]);
                i++;
            }
        }

        return sb.ToString();
    }

    // Length of the article matched at i (alternatives tried in order a, an, the as Python's regex does), or 0.
    private static int ArticleAt(string text, int i)
    {
        if (i > 0 && IsWordBefore(text, i))
        {
            return 0;
        }

        foreach (var article in (ReadOnlySpan<string>)["a", "an", "the"])
        {
            if (string.CompareOrdinal(text, i, article, 0, article.Length) == 0
                && (i + article.Length == text.Length || !PythonText.IsWordChar(text, i + article.Length)))
            {
                return article.Length;
            }
        }

        return 0;
    }

    private static bool IsWordBefore(string text, int i) =>
        PythonText.IsWordChar(text, i >= 2 && char.IsLowSurrogate(text[i - 1]) && char.IsHighSurrogate(text[i - 2]) ? i - 2 : i - 1);
}

/// <summary>The <c>exact_match</c> metric: SQuAD v1.1 exact match (articles removed), best over the references.</summary>
public sealed class ExactMatchMetric : IMetric
{
    /// <summary>The registered name, <c>exact_match</c>.</summary>
    public const string MetricName = "exact_match";

    /// <inheritdoc />
    public string Name => MetricName;

    /// <inheritdoc />
    public double Score(string prediction, IReadOnlyList<string> references) =>
        Squad.Max((p, t) => Squad.ExactMatch(p, t, removeArticles: true), prediction, references);
}

/// <summary>
/// The <c>dskd_exact_match</c> metric: the exact match DSKD/MiniLLM report next to ROUGE-L (lower-case, strip ASCII
/// punctuation, collapse whitespace; articles kept), best over the references.
/// </summary>
public sealed class DskdExactMatchMetric : IMetric
{
    /// <summary>The registered name, <c>dskd_exact_match</c>.</summary>
    public const string MetricName = "dskd_exact_match";

    /// <inheritdoc />
    public string Name => MetricName;

    /// <inheritdoc />
    public double Score(string prediction, IReadOnlyList<string> references) =>
        Squad.Max((p, t) => Squad.ExactMatch(p, t, removeArticles: false), prediction, references);
}

/// <summary>The <c>squad_f1</c> metric: SQuAD v1.1 token F1, best over the references.</summary>
public sealed class SquadF1Metric : IMetric
{
    /// <summary>The registered name, <c>squad_f1</c>.</summary>
    public const string MetricName = "squad_f1";

    /// <inheritdoc />
    public string Name => MetricName;

    /// <inheritdoc />
    public double Score(string prediction, IReadOnlyList<string> references) => Squad.Max(Squad.F1, prediction, references);
}
