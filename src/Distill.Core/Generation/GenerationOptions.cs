namespace Distill.Generation;

/// <summary>Options of <see cref="O:Distill.Generation.TextGenerator.Generate"/>.</summary>
/// <remarks>
/// Processing order when sampling is transformers': temperature, then top-k, then top-p, then a multinomial draw. Greedy
/// decoding (<see cref="DoSample"/> = false) ignores temperature, top-k and top-p.
/// </remarks>
public sealed class GenerationOptions
{
    /// <summary>Gets or sets the maximum number of tokens to generate per row.</summary>
    /// <value>The default is 64.</value>
    public int MaxNewTokens { get; set; } = 64;

    /// <summary>Gets or sets a value indicating whether to sample (true) or decode greedily (false).</summary>
    /// <value>The default is <see langword="false"/>.</value>
    public bool DoSample { get; set; }

    /// <summary>Gets or sets the sampling temperature (&gt; 0); logits are divided by it before top-k/top-p.</summary>
    /// <value>The default is 1.</value>
    public double Temperature { get; set; } = 1.0;

    /// <summary>Gets or sets top-k: keep only the k most likely tokens; 0 disables it.</summary>
    /// <value>The default is 0 (off; transformers' GenerationConfig default is 50, DSKD's evaluation uses 0).</value>
    public int TopK { get; set; }

    /// <summary>Gets or sets top-p (nucleus): keep the smallest set of most likely tokens whose probability reaches p; 1 disables it.</summary>
    /// <value>The default is 1.</value>
    public double TopP { get; set; } = 1.0;

    /// <summary>Gets or sets the seed of the sampling generator; <see langword="null"/> uses torch's global generator.</summary>
    /// <value>The default is <see langword="null"/>.</value>
    public long? Seed { get; set; }

    /// <summary>Gets or sets the EOS token ids; a row stops after emitting any of them (the EOS token is kept).</summary>
    /// <value>The default is empty (no EOS stop).</value>
    public IReadOnlyList<long> EosTokenIds { get; set; } = [];

    /// <summary>Gets or sets the id written after a row has finished.</summary>
    /// <value>The default is <see langword="null"/>: the first EOS id. With neither, a batch whose rows can finish at different steps (stop strings) is rejected.</value>
    public long? PadTokenId { get; set; }

    /// <summary>Gets or sets stop strings: a row stops once its decoded generated text contains one (the text is kept). Needs <see cref="Decode"/>.</summary>
    /// <value>The default is empty.</value>
    public IReadOnlyList<string> StopSequences { get; set; } = [];

    /// <summary>Gets or sets the decoder used for <see cref="StopSequences"/>: maps a row's generated ids to text.</summary>
    /// <value>The default is <see langword="null"/>.</value>
    public Func<IReadOnlyList<long>, string>? Decode { get; set; }

    /// <summary>Gets or sets a value indicating whether to decode incrementally with a key/value cache (results equal full recompute).</summary>
    /// <value>The default is <see langword="true"/>.</value>
    public bool UseCache { get; set; } = true;

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid option.</summary>
    public void Validate()
    {
        if (MaxNewTokens < 0)
        {
            throw new ArgumentException($"{nameof(MaxNewTokens)} must be >= 0; got {MaxNewTokens}.");
        }

        if (DoSample && !(Temperature > 0))
        {
            throw new ArgumentException($"{nameof(Temperature)} must be > 0 when sampling; got {Temperature}.");
        }

        if (TopK < 0)
        {
            throw new ArgumentException($"{nameof(TopK)} must be >= 0; got {TopK}.");
        }

        if (!(TopP > 0 && TopP <= 1))
        {
            throw new ArgumentException($"{nameof(TopP)} must be in (0, 1]; got {TopP}.");
        }

        if (StopSequences.Count > 0 && Decode is null)
        {
            throw new ArgumentException($"{nameof(StopSequences)} need a {nameof(Decode)} delegate.");
        }
    }
}
