namespace Distill.Data.Synthesis;

/// <summary>A task's answer check of an SDFT rewrite against the reference (math, code, function calling).</summary>
/// <remarks>Implementations are stateless and thread-safe. Distill.Eval's <c>SdftAnswerChecks.For</c> provides the official ones.</remarks>
public interface ISdftAnswerCheck
{
    /// <summary>Whether <paramref name="rewrite"/> passes the task's check against <paramref name="reference"/>.</summary>
    /// <param name="reference">The original (stripped) response.</param>
    /// <param name="rewrite">The stripped rewrite.</param>
    /// <returns><see langword="true"/> to keep the rewrite.</returns>
    /// <exception cref="InvalidDataException">The reference itself is not in the task's format (e.g. not a function call).</exception>
    bool Passes(string reference, string rewrite);
}

/// <summary>
/// SDFT's qualification of a rewrite (official <c>gen_distilled_data.py</c>): <c>verify(pred) and check_func(pred)</c>, plus
/// Distill's empty/truncated checks. The first failing check names the reason.
/// </summary>
/// <param name="options">Which of Distill's extra checks are on.</param>
/// <param name="kind">The task's answer check kind.</param>
/// <param name="answerCheck">The answer check; required unless <paramref name="kind"/> is <see cref="SdftTaskKind.General"/>.</param>
public sealed class SdftFilter(SdftOptions options, SdftTaskKind kind, ISdftAnswerCheck? answerCheck)
{
    /// <summary>The excluded phrases of the official <c>verify</c>, matched case-insensitively anywhere in the rewrite.</summary>
    public static IReadOnlyList<string> ExcludedPhrases { get; } = ["reference answer", "your response", "my response", "your own response", "now it's your turn"];

    /// <summary>The prefix of the official <c>verify</c>, matched case-sensitively at the start of the rewrite.</summary>
    public const string ExcludedPrefix = "Your turn";

    private readonly ISdftAnswerCheck? check = kind == SdftTaskKind.General
        ? null
        : answerCheck ?? throw new ArgumentException($"The SDFT task kind {kind} needs an answer check (Distill.Eval: SdftAnswerChecks.For(task, branch)).", nameof(answerCheck));

    /// <summary>The official <c>verify</c>: false when the rewrite contains an excluded phrase (lower-cased) or starts with "Your turn".</summary>
    /// <param name="rewrite">The stripped rewrite.</param>
    /// <returns>Whether the rewrite passes.</returns>
    public static bool Verify(string rewrite)
    {
        ArgumentNullException.ThrowIfNull(rewrite);
        var lower = rewrite.ToLowerInvariant();
        return !ExcludedPhrases.Any(p => lower.Contains(p, StringComparison.Ordinal)) && !rewrite.StartsWith(ExcludedPrefix, StringComparison.Ordinal);
    }

    /// <summary>Classifies one rewrite.</summary>
    /// <param name="reference">The original response, stripped.</param>
    /// <param name="rewrite">The rewrite, stripped.</param>
    /// <param name="truncated">Whether generation stopped at the token limit rather than EOS.</param>
    /// <returns><see cref="SdftReason.Kept"/>, or the first reason it falls back.</returns>
    public SdftReason Classify(string reference, string rewrite, bool truncated)
    {
        ArgumentNullException.ThrowIfNull(reference);
        ArgumentNullException.ThrowIfNull(rewrite);
        if (options.RejectEmpty && string.IsNullOrWhiteSpace(rewrite))
        {
            return SdftReason.Empty;
        }

        if (options.RejectTruncated && truncated)
        {
            return SdftReason.Truncated;
        }

        if (!Verify(rewrite))
        {
            return SdftReason.BadWord;
        }

        if (check is not null && !check.Passes(reference, rewrite))
        {
            return kind == SdftTaskKind.Math ? SdftReason.WrongAnswer : SdftReason.WrongFormat;
        }

        return SdftReason.Kept;
    }
}
