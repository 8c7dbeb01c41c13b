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

    /// <summary>Tokenises <paramref name="example"/> as DSKD does (no BOS, EOS appended).</summary>
    /// <param name="tokenizer">The tokenizer; it must define EOS.</param>
    /// <param name="example">Prompt and response.</param>
    /// <param name="maxLength">Maximum total tokens (prompt + response + EOS).</param>
    /// <param name="maxPromptLength">Maximum prompt tokens (the first ones are kept).</param>
    /// <returns>The tokenised example.</returns>
    /// <exception cref="InvalidOperationException">The tokenizer has no EOS token.</exception>
    public static TokenizedExample Create(HfTokenizer tokenizer, TextExample example, int maxLength, int maxPromptLength) =>
        Create(tokenizer, example, maxLength, maxPromptLength, SequenceFormat.Dskd);

    /// <summary>Tokenises <paramref name="example"/> with an explicit BOS/EOS layout.</summary>
    /// <param name="tokenizer">The tokenizer.</param>
    /// <param name="example">Prompt and response.</param>
    /// <param name="maxLength">Maximum total tokens.</param>
    /// <param name="maxPromptLength">Maximum prompt tokens, BOS included (the first ones are kept).</param>
    /// <param name="format">Whether BOS starts the prompt and EOS ends the response.</param>
    /// <returns>The tokenised example; a BOS has the empty span at 0.</returns>
    /// <exception cref="InvalidOperationException">The format asks for a BOS or EOS the tokenizer does not define.</exception>
    public static TokenizedExample Create(HfTokenizer tokenizer, TextExample example, int maxLength, int maxPromptLength, SequenceFormat format)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(example);
        ArgumentNullException.ThrowIfNull(format);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxLength, 2);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxPromptLength);
        int? eos = format.AppendEos
            ? tokenizer.EosTokenId ?? throw new InvalidOperationException($"Tokenizer {tokenizer.Source} has no EOS token; this format appends EOS to every response.")
            : null;
        int? bos = format.PrependBos
            ? tokenizer.BosTokenId ?? throw new InvalidOperationException($"Tokenizer {tokenizer.Source} has no BOS token; this format starts every prompt with BOS.")
            : null;
        var prompt = tokenizer.Encode(example.Prompt, addSpecialTokens: false);
        var response = tokenizer.Encode(example.Response, addSpecialTokens: false);
        var text = example.Prompt + example.Response;
        var tokens = new List<int>(prompt.Count + response.Count + 2);
        var offsets = new List<TokenSpan>(tokens.Capacity);
        if (bos is int b)
        {
            tokens.Add(b);
            offsets.Add(new TokenSpan(0, 0));
        }

        for (var i = 0; i < prompt.Count && tokens.Count < maxPromptLength; i++)
        {
            tokens.Add(prompt.Ids[i]);
            offsets.Add(prompt.Offsets[i]);
        }

        var promptLength = tokens.Count;
        var shift = example.Prompt.Length;
        for (var i = 0; i < response.Count; i++)
        {
            tokens.Add(response.Ids[i]);
            offsets.Add(new TokenSpan(response.Offsets[i].Start + shift, response.Offsets[i].End + shift));
        }

        if (eos is int e)
        {
            tokens.Add(e);
            offsets.Add(new TokenSpan(text.Length, text.Length));
        }

        var keep = Math.Min(tokens.Count, maxLength);
        return new TokenizedExample([.. tokens.Take(keep)], promptLength, [.. offsets.Take(keep)], text);
    }
}

/// <summary>Where special tokens go when an example is tokenised.</summary>
/// <param name="PrependBos">Whether the prompt starts with the tokenizer's BOS.</param>
/// <param name="AppendEos">Whether the response ends with the tokenizer's EOS.</param>
public sealed record SequenceFormat(bool PrependBos, bool AppendEos)
{
    /// <summary>Gets DSKD's layout (and MiniLLM's): no BOS, EOS after the response.</summary>
    public static SequenceFormat Dskd { get; } = new(PrependBos: false, AppendEos: true);

    /// <summary>Gets ULD's student layout (llm-distillation): <c>BOS + prompt</c>, <c>" " + answer + EOS</c>.</summary>
    public static SequenceFormat UldStudent { get; } = new(PrependBos: true, AppendEos: true);

    /// <summary>Gets ULD's teacher layout: the teacher answer carries no EOS (and the chat prompt is already rendered as text).</summary>
    public static SequenceFormat UldTeacher { get; } = new(PrependBos: false, AppendEos: false);
}
