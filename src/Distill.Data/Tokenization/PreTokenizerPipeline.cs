using System.Text.RegularExpressions;
using Microsoft.ML.Tokenizers;

namespace Distill.Data;

/// <summary>How a split pattern treats its matches (Hugging Face <c>SplitDelimiterBehavior</c>).</summary>
internal enum SplitBehavior
{
    /// <summary>Matches are dropped; the text between them is kept.</summary>
    Removed,

    /// <summary>Matches and the text between them become separate pieces.</summary>
    Isolated,

    /// <summary>Each match is appended to the piece before it.</summary>
    MergedWithPrevious,

    /// <summary>Each match is prepended to the piece after it.</summary>
    MergedWithNext,

    /// <summary>Consecutive matches are merged into one piece; the text between them is kept.</summary>
    Contiguous,
}

/// <summary>One regex split stage of a pre-tokenizer; <paramref name="Source"/> (the tokenizer file) is named when the regex times out.</summary>
internal sealed record SplitStage(Regex Pattern, SplitBehavior Behavior, string Source = "built-in pattern");

/// <summary>Creates the regexes of tokenizers: every one runs with <see cref="MatchTimeout"/>.</summary>
internal static class TokenizerRegex
{
    /// <summary>The match timeout of every tokenizer regex (a pattern that backtracks catastrophically fails instead of hanging).</summary>
    public static readonly TimeSpan MatchTimeout = TimeSpan.FromSeconds(2);

    public static Regex Create(string pattern) => new(pattern, RegexOptions.CultureInvariant, MatchTimeout);
}

/// <summary>
/// A Hugging Face pre-tokenizer pipeline (<c>Sequence</c> of <c>Split</c>, <c>ByteLevel</c>, <c>Digits</c>,
/// <c>Whitespace</c>, <c>WhitespaceSplit</c>, <c>Punctuation</c>) as a Microsoft.ML.Tokenizers <see cref="PreTokenizer"/>:
/// each stage splits every piece produced by the stages before it.
/// </summary>
internal sealed class PreTokenizerPipeline : PreTokenizer
{
    /// <summary>The regex GPT-2's <c>ByteLevel</c> pre-tokenizer applies when <c>use_regex</c> is true.</summary>
    public const string Gpt2Pattern = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

    private readonly IReadOnlyList<SplitStage> _stages;

    public PreTokenizerPipeline(IReadOnlyList<SplitStage> stages) => _stages = stages;

    /// <summary>Gets the stages, in application order.</summary>
    public IReadOnlyList<SplitStage> Stages => _stages;

    public override IEnumerable<(int Offset, int Length)> PreTokenize(string text) => PreTokenize(text.AsSpan());

    public override IEnumerable<(int Offset, int Length)> PreTokenize(ReadOnlySpan<char> text) => Split(text);

    /// <summary>Splits <paramref name="text"/> into pieces (offset, length); empty pieces are dropped.</summary>
    public List<(int Offset, int Length)> Split(ReadOnlySpan<char> text)
    {
        var pieces = new List<(int Offset, int Length)>();
        if (text.IsEmpty)
        {
            return pieces;
        }

        pieces.Add((0, text.Length));
        foreach (var stage in _stages)
        {
            var next = new List<(int Offset, int Length)>(pieces.Count * 2);
            foreach (var (offset, length) in pieces)
            {
                SplitOne(text.Slice(offset, length), offset, stage, next);
            }

            pieces = next;
        }

        return pieces;
    }

    private static void SplitOne(ReadOnlySpan<char> piece, int baseOffset, SplitStage stage, List<(int Offset, int Length)> output)
    {
        // Collect matches as (start, end) relative to the piece; zero-length matches split nothing.
        var matches = new List<(int Start, int End)>();
        try
        {
            foreach (var m in stage.Pattern.EnumerateMatches(piece))
            {
                if (m.Length > 0)
                {
                    matches.Add((m.Index, m.Index + m.Length));
                }
            }
        }
        catch (RegexMatchTimeoutException e)
        {
            throw new InvalidDataException(
                $"{stage.Source}: the pre-tokenizer regex '{Distill.IO.InputFile.Bound(stage.Pattern.ToString())}' exceeded its match timeout of {stage.Pattern.MatchTimeout.TotalSeconds:0.#} s on a {piece.Length}-character piece (catastrophic backtracking); the pattern must be fixed.",
                e);
        }

        if (matches.Count == 0)
        {
            output.Add((baseOffset, piece.Length));
            return;
        }

        if (stage.Behavior == SplitBehavior.Contiguous)
        {
            var merged = new List<(int Start, int End)>();
            foreach (var m in matches)
            {
                if (merged.Count > 0 && merged[^1].End == m.Start)
                {
                    merged[^1] = (merged[^1].Start, m.End);
                }
                else
                {
                    merged.Add(m);
                }
            }

            matches = merged;
        }

        // Segments: alternating gaps and matches, in order.
        var segments = new List<(int Start, int End, bool IsMatch)>();
        var cursor = 0;
        foreach (var (start, end) in matches)
        {
            if (start > cursor)
            {
                segments.Add((cursor, start, false));
            }

            segments.Add((start, end, true));
            cursor = end;
        }

        if (cursor < piece.Length)
        {
            segments.Add((cursor, piece.Length, false));
        }

        var result = new List<(int Start, int End)>();
        switch (stage.Behavior)
        {
            case SplitBehavior.Removed:
                result.AddRange(segments.Where(s => !s.IsMatch).Select(s => (s.Start, s.End)));
                break;
            case SplitBehavior.Isolated:
            case SplitBehavior.Contiguous:
                result.AddRange(segments.Select(s => (s.Start, s.End)));
                break;
            case SplitBehavior.MergedWithPrevious:
                for (var k = 0; k < segments.Count; k++)
                {
                    // A delimiter joins the text piece before it; a delimiter after a delimiter stands alone.
                    var s = segments[k];
                    if (s.IsMatch && k > 0 && !segments[k - 1].IsMatch)
                    {
                        result[^1] = (result[^1].Start, s.End);
                    }
                    else
                    {
                        result.Add((s.Start, s.End));
                    }
                }

                break;
            case SplitBehavior.MergedWithNext:
                var pending = -1;
                foreach (var s in segments)
                {
                    if (s.IsMatch)
                    {
                        if (pending >= 0)
                        {
                            result.Add((pending, s.Start));
                        }

                        pending = s.Start;
                    }
                    else
                    {
                        result.Add((pending >= 0 ? pending : s.Start, s.End));
                        pending = -1;
                    }
                }

                if (pending >= 0)
                {
                    result.Add((pending, piece.Length));
                }

                break;
            default:
                throw new InvalidOperationException($"Unknown split behaviour {stage.Behavior}.");
        }

        foreach (var (start, end) in result)
        {
            if (end > start)
            {
                output.Add((baseOffset + start, end - start));
            }
        }
    }
}
