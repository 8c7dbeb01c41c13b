namespace Distill.Data;

/// <summary>A token matched verbatim in the text before the model runs (<c>added_tokens</c> of tokenizer.json, <c>added_tokens_decoder</c> of tokenizer_config.json).</summary>
/// <param name="Id">The token id.</param>
/// <param name="Content">The literal text of the token.</param>
/// <param name="Special">Whether the token is special (skipped by <c>Decode(..., skipSpecialTokens: true)</c>).</param>
/// <param name="LStrip">Whether the token absorbs the whitespace on its left.</param>
/// <param name="RStrip">Whether the token absorbs the whitespace on its right.</param>
internal sealed record AddedToken(int Id, string Content, bool Special, bool LStrip, bool RStrip);

/// <summary>Splits text into plain segments and added tokens, leftmost-longest match first (as Hugging Face <c>tokenizers</c> does).</summary>
internal sealed class AddedTokenSplitter
{
    private readonly Dictionary<char, AddedToken[]> _byFirstChar;

    public AddedTokenSplitter(IEnumerable<AddedToken> tokens)
    {
        _byFirstChar = tokens
            .Where(t => t.Content.Length > 0)
            .GroupBy(t => t.Content[0])
            .ToDictionary(g => g.Key, g => g.OrderByDescending(t => t.Content.Length).ToArray());
    }

    /// <summary>One piece of the split: a plain segment <c>[Start, End)</c> (Token null) or an added token covering <c>[Start, End)</c>.</summary>
    public readonly record struct Segment(int Start, int End, AddedToken? Token);

    public List<Segment> Split(string text)
    {
        var matches = new List<Segment>();
        var i = 0;
        while (i < text.Length)
        {
            var match = MatchAt(text, i);
            if (match is null)
            {
                i++;
                continue;
            }

            matches.Add(new Segment(i, i + match.Content.Length, match));
            i += match.Content.Length;
        }

        var segments = new List<Segment>(matches.Count * 2 + 1);
        var cursor = 0;
        for (var m = 0; m < matches.Count; m++)
        {
            var (start, end, token) = (matches[m].Start, matches[m].End, matches[m].Token!);
            if (token.LStrip)
            {
                while (start > cursor && char.IsWhiteSpace(text[start - 1]))
                {
                    start--;
                }
            }

            if (token.RStrip)
            {
                var limit = m + 1 < matches.Count ? matches[m + 1].Start : text.Length;
                while (end < limit && char.IsWhiteSpace(text[end]))
                {
                    end++;
                }
            }

            if (start > cursor)
            {
                segments.Add(new Segment(cursor, start, null));
            }

            segments.Add(new Segment(start, end, token));
            cursor = end;
        }

        if (cursor < text.Length)
        {
            segments.Add(new Segment(cursor, text.Length, null));
        }

        return segments;
    }

    private AddedToken? MatchAt(string text, int index)
    {
        if (!_byFirstChar.TryGetValue(text[index], out var candidates))
        {
            return null;
        }

        foreach (var candidate in candidates)
        {
            if (index + candidate.Content.Length <= text.Length
                && string.CompareOrdinal(text, index, candidate.Content, 0, candidate.Content.Length) == 0)
            {
                return candidate;
            }
        }

        return null;
    }
}
