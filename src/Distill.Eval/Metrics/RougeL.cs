using System.Collections.Concurrent;
using Distill.Eval.Text;

namespace Distill.Eval.Metrics;

/// <summary>Precision, recall and F-measure of one ROUGE comparison (<c>rouge_score.scoring.Score</c>).</summary>
/// <param name="Precision">LCS length / prediction token count.</param>
/// <param name="Recall">LCS length / target token count.</param>
/// <param name="FMeasure">2PR / (P + R), or 0 when P + R = 0.</param>
public readonly record struct RougeScore(double Precision, double Recall, double FMeasure);

/// <summary>
/// ROUGE-L exactly as Google's <c>rouge_score</c> computes it with <c>RougeScorer(['rougeL'], use_stemmer=True)</c>:
/// its tokenizer, NLTK's Porter stemmer and the LCS-based precision, recall and F-measure.
/// </summary>
/// <remarks>
/// Tokenizer (<c>rouge_score/tokenize.py</c>): Python <c>lower()</c>; every run of characters outside <c>[a-z0-9]</c>
/// becomes one space (so all non-ASCII letters vanish, except those whose Python lower-case is ASCII: U+0130 → i,
/// U+212A KELVIN SIGN → k); split on whitespace; tokens longer than 3 characters are stemmed with
/// <see cref="PorterStemmer"/>; empty tokens are dropped. Score (<c>_score_lcs</c>): 0/0/0 when either side has no
/// tokens; otherwise P = LCS/|prediction|, R = LCS/|target|, F = 2PR/(P+R). Note the argument order of
/// <c>score(target, prediction)</c>: the reference comes first.
/// </remarks>
public static class RougeL
{
    // Stemming is a pure function of the token and dominates tokenisation time; natural text repeats words, so a
    // bounded memo (no eviction: it simply stops growing) makes repeated scoring cheap without changing any result.
    private const int StemCacheCapacity = 200_000;
    private static readonly ConcurrentDictionary<string, string> StemCache = new(StringComparer.Ordinal);

    /// <summary>Tokenizes text as <c>rouge_score.tokenize.tokenize(text, PorterStemmer())</c>.</summary>
    /// <param name="text">Any text.</param>
    /// <param name="useStemmer">Whether to stem tokens longer than 3 characters (rouge_score's <c>use_stemmer</c>).</param>
    /// <returns>The tokens, each non-empty and made of <c>[a-z0-9]</c>.</returns>
    public static IReadOnlyList<string> Tokenize(string text, bool useStemmer = true)
    {
        ArgumentNullException.ThrowIfNull(text);
        var lower = PythonText.Lower(text);
        var tokens = new List<string>();
        var start = -1;
        for (var i = 0; i <= lower.Length; i++)
        {
            var alnum = i < lower.Length && lower[i] is (>= 'a' and <= 'z') or (>= '0' and <= '9');
            if (alnum)
            {
                if (start < 0)
                {
                    start = i;
                }

                continue;
            }

            if (start >= 0)
            {
                var token = lower[start..i];
                tokens.Add(useStemmer && token.Length > 3 ? Stem(token) : token);
                start = -1;
            }
        }

        // rouge_score's final filter (^[a-z0-9]+$) drops empty tokens; a stem of an [a-z0-9] word is never empty or
        // outside the class, so nothing else can be dropped here.
        tokens.RemoveAll(t => t.Length == 0);
        return tokens;
    }

    private static string Stem(string token)
    {
        if (StemCache.TryGetValue(token, out var stem))
        {
            return stem;
        }

        stem = PorterStemmer.Instance.Stem(token);
        if (StemCache.Count < StemCacheCapacity)
        {
            StemCache.TryAdd(token, stem);
        }

        return stem;
    }

    /// <summary>Scores a prediction against one target: <c>RougeScorer(['rougeL'], use_stemmer).score(target, prediction)['rougeL']</c>.</summary>
    /// <param name="target">The reference text (first, as in rouge_score).</param>
    /// <param name="prediction">The predicted text.</param>
    /// <param name="useStemmer">Whether to stem (the default, as DSKD).</param>
    /// <returns>Precision, recall and F-measure.</returns>
    public static RougeScore Score(string target, string prediction, bool useStemmer = true)
    {
        var targetTokens = Tokenize(target, useStemmer);
        var predictionTokens = Tokenize(prediction, useStemmer);
        return ScoreTokens(targetTokens, predictionTokens);
    }

    /// <summary>The best F-measure over several targets (DSKD's <c>metric_max_over_ground_truths</c>); 0 for no targets.</summary>
    /// <param name="prediction">The predicted text.</param>
    /// <param name="targets">The reference texts.</param>
    /// <param name="useStemmer">Whether to stem.</param>
    /// <returns>The maximum F-measure in [0, 1].</returns>
    public static double MaxFMeasure(string prediction, IReadOnlyList<string> targets, bool useStemmer = true)
    {
        ArgumentNullException.ThrowIfNull(targets);
        if (targets.Count == 0)
        {
            return 0;
        }

        var predictionTokens = Tokenize(prediction, useStemmer);
        var best = 0.0;
        foreach (var target in targets)
        {
            best = Math.Max(best, ScoreTokens(Tokenize(target, useStemmer), predictionTokens).FMeasure);
        }

        return best;
    }

    /// <summary>LCS-based score of two token sequences (<c>rouge_scorer._score_lcs</c>).</summary>
    /// <param name="targetTokens">Reference tokens.</param>
    /// <param name="predictionTokens">Predicted tokens.</param>
    /// <returns>Precision, recall and F-measure; all 0 when either side is empty.</returns>
    public static RougeScore ScoreTokens(IReadOnlyList<string> targetTokens, IReadOnlyList<string> predictionTokens)
    {
        ArgumentNullException.ThrowIfNull(targetTokens);
        ArgumentNullException.ThrowIfNull(predictionTokens);
        if (targetTokens.Count == 0 || predictionTokens.Count == 0)
        {
            return new RougeScore(0, 0, 0);
        }

        var lcs = LcsLength(targetTokens, predictionTokens);
        var precision = (double)lcs / predictionTokens.Count;
        var recall = (double)lcs / targetTokens.Count;
        return new RougeScore(precision, recall, FMeasure(precision, recall));
    }

    /// <summary><c>rouge_score.scoring.fmeasure</c>: 2PR/(P+R), 0 when P + R = 0.</summary>
    internal static double FMeasure(double precision, double recall) =>
        precision + recall > 0 ? 2 * precision * recall / (precision + recall) : 0.0;

    /// <summary>Length of the longest common subsequence, with two rolling rows of the DP table.</summary>
    internal static int LcsLength(IReadOnlyList<string> reference, IReadOnlyList<string> candidate)
    {
        var previous = new int[candidate.Count + 1];
        var current = new int[candidate.Count + 1];
        for (var i = 1; i <= reference.Count; i++)
        {
            var r = reference[i - 1];
            for (var j = 1; j <= candidate.Count; j++)
            {
                current[j] = string.Equals(r, candidate[j - 1], StringComparison.Ordinal)
                    ? previous[j - 1] + 1
                    : Math.Max(previous[j], current[j - 1]);
            }

            (previous, current) = (current, previous);
        }

        return previous[candidate.Count];
    }
}

/// <summary>The <c>rougeL</c> metric: ROUGE-L F-measure with stemming, best over the references (DSKD's dev/test metric).</summary>
public sealed class RougeLMetric : IMetric
{
    /// <summary>The registered name, <c>rougeL</c>.</summary>
    public const string MetricName = "rougeL";

    /// <inheritdoc />
    public string Name => MetricName;

    /// <inheritdoc />
    public double Score(string prediction, IReadOnlyList<string> references) => RougeL.MaxFMeasure(prediction, references);
}
