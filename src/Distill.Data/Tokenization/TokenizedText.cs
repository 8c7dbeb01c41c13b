namespace Distill.Data;

/// <summary>A character span <c>[Start, End)</c> in the encoded text (UTF-16 code units).</summary>
/// <param name="Start">Index of the first character covered by the token.</param>
/// <param name="End">Index one past the last character covered by the token; equals <paramref name="Start"/> for tokens that cover no text (BOS/EOS added by the post-processor).</param>
public readonly record struct TokenSpan(int Start, int End)
{
    /// <summary>Gets the number of characters covered.</summary>
    public int Length => End - Start;
}

/// <summary>The result of <see cref="HfTokenizer.Encode(string, bool)"/>: token ids and the character span of each token.</summary>
/// <remarks>
/// Spans index the input string. A byte-level token that holds only part of a multi-byte character (an emoji split into
/// two tokens) covers the whole character, so neighbouring spans may overlap, as in Hugging Face <c>tokenizers</c>.
/// </remarks>
public sealed class TokenizedText
{
    internal TokenizedText(int[] ids, TokenSpan[] offsets)
    {
        Ids = ids;
        Offsets = offsets;
    }

    /// <summary>Gets the token ids.</summary>
    public IReadOnlyList<int> Ids { get; }

    /// <summary>Gets one character span per token, in the same order as <see cref="Ids"/>.</summary>
    public IReadOnlyList<TokenSpan> Offsets { get; }

    /// <summary>Gets the number of tokens.</summary>
    public int Count => Ids.Count;
}
