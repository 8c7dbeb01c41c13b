namespace Distill.Data;

/// <summary>
/// One example tokenised as DSKD does: prompt and response encoded separately without special tokens, prompt cut to its
/// first <c>MaxPromptLength</c> tokens, EOS appended to the response, the whole cut to <c>MaxLength</c>.
/// </summary>
/// <remarks>
/// The model input is <c>Tokens[0..^1]</c> and the label of input position t is <c>Tokens[t + 1]</c> for
/// t ≥ <see cref="PromptLength"/> − 1, −100 before (labels aligned with logits).
/// </remarks>
public sealed class TokenizedExample
{
    internal TokenizedExample(int[] tokens, int promptLength, TokenSpan[] offsets, string text)
    {
        Tokens = tokens;
        PromptLength = promptLength;
        Offsets = offsets;
        Text = text;
    }

    /// <summary>Gets prompt ids + response ids (+ EOS unless truncated away).</summary>
    public IReadOnlyList<int> Tokens { get; }

    /// <summary>Gets the number of prompt tokens kept.</summary>
    public int PromptLength { get; }

    /// <summary>Gets the character span of each token in <see cref="Text"/>; EOS has the empty span at the end.</summary>
    public IReadOnlyList<TokenSpan> Offsets { get; }

    /// <summary>Gets prompt + response, the text the offsets index.</summary>
    public string Text { get; }

    /// <summary>Gets the number of input positions (<c>Tokens.Count − 1</c>).</summary>
    public int InputLength => Tokens.Count - 1;

    /// <summary>Gets the number of scored positions (response tokens, EOS included).</summary>
    public int TargetCount => Math.Max(0, Tokens.Count - Math.Max(PromptLength, 1));

    /// <summary>Tokenises <paramref name="example"/>.</summary>
    /// <param name="tokenizer">The tokenizer; it must define EOS.</param>
    /// <param name="example">Prompt and response.</param>
    /// <param name="maxLength">Maximum total tokens (prompt + response + EOS).</param>
    /// <param name="maxPromptLength">Maximum prompt tokens (the first ones are kept).</param>
    /// <returns>The tokenised example.</returns>
    /// <exception cref="InvalidOperationException">The tokenizer has no EOS token.</exception>
    public static TokenizedExample Create(HfTokenizer tokenizer, TextExample example, int maxLength, int maxPromptLength)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(example);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxLength, 2);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxPromptLength);
        var eos = tokenizer.EosTokenId ?? throw new InvalidOperationException($"Tokenizer {tokenizer.Source} has no EOS token; DSKD-style tokenisation appends EOS to every response.");
        var prompt = tokenizer.Encode(example.Prompt, addSpecialTokens: false);
        var response = tokenizer.Encode(example.Response, addSpecialTokens: false);
        var promptLength = Math.Min(prompt.Count, maxPromptLength);
        var text = example.Prompt + example.Response;
        var tokens = new List<int>(promptLength + response.Count + 1);
        var offsets = new List<TokenSpan>(tokens.Capacity);
        for (var i = 0; i < promptLength; i++)
        {
            tokens.Add(prompt.Ids[i]);
            offsets.Add(prompt.Offsets[i]);
        }

        var shift = example.Prompt.Length;
        for (var i = 0; i < response.Count; i++)
        {
            tokens.Add(response.Ids[i]);
            offsets.Add(new TokenSpan(response.Offsets[i].Start + shift, response.Offsets[i].End + shift));
        }

        tokens.Add(eos);
        offsets.Add(new TokenSpan(text.Length, text.Length));
        var keep = Math.Min(tokens.Count, maxLength);
        return new TokenizedExample([.. tokens.Take(keep)], promptLength, [.. offsets.Take(keep)], text);
    }
}
