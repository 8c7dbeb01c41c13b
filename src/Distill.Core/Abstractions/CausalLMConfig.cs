namespace Distill;

/// <summary>
/// The configuration fields every supported architecture shares, parsed from an HF <c>config.json</c>. Architecture-specific
/// configs (GPT-2, Llama, Qwen2, ...) derive from it.
/// </summary>
public abstract class CausalLMConfig
{
    /// <summary>Gets or sets the HF <c>model_type</c> (e.g. <c>gpt2</c>, <c>llama</c>, <c>mistral</c>, <c>qwen2</c>).</summary>
    public required string ModelType { get; set; }

    /// <summary>Gets or sets the vocabulary size (rows of the embedding and lm_head; may exceed the tokenizer's vocabulary).</summary>
    public required int VocabSize { get; set; }

    /// <summary>Gets or sets the hidden size d.</summary>
    public required int HiddenSize { get; set; }

    /// <summary>Gets or sets the number of transformer layers.</summary>
    public required int NumHiddenLayers { get; set; }

    /// <summary>Gets or sets the number of attention heads.</summary>
    public required int NumAttentionHeads { get; set; }

    /// <summary>Gets or sets the maximum number of positions.</summary>
    public required int MaxPositionEmbeddings { get; set; }

    /// <summary>Gets or sets a value indicating whether the lm_head shares the input embedding matrix.</summary>
    public bool TieWordEmbeddings { get; set; }

    /// <summary>Gets or sets the BOS token id, if any.</summary>
    public long? BosTokenId { get; set; }

    /// <summary>Gets or sets the EOS token ids (HF allows a list).</summary>
    public IReadOnlyList<long> EosTokenIds { get; set; } = [];

    /// <summary>Gets or sets the padding token id, if any.</summary>
    public long? PadTokenId { get; set; }

    /// <summary>Gets or sets the <c>config.json</c> this config was parsed from, if any; saving starts from it so keys Distill does not model survive a round trip.</summary>
    internal System.Text.Json.Nodes.JsonObject? SourceJson { get; set; }
}
