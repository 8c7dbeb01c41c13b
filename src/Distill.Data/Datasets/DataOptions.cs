using System.ComponentModel.DataAnnotations;

namespace Distill.Data;

/// <summary>Which side of a batch row holds the padding.</summary>
public enum PaddingSide
{
    /// <summary>Padding after the tokens (training batches; DSKD).</summary>
    Right,

    /// <summary>Padding before the tokens (generation prompts, so every row ends at the last column).</summary>
    Left,
}

/// <summary>Tokenisation and batching settings, bound via <c>IOptions&lt;DataOptions&gt;</c> by <c>AddDistillData</c>.</summary>
/// <remarks>Defaults follow DSKD's scripts (max_length 512, max_prompt_length 256, right padding); the batch size and
/// seed are the trainer's to choose.</remarks>
public sealed class DataOptions : IValidatableObject
{
    /// <summary>Gets or sets the maximum number of tokens of prompt + response + EOS (DSKD <c>--max-length</c>); longer examples lose the end of the response.</summary>
    /// <value>The default is 512.</value>
    [Range(2, int.MaxValue)]
    public int MaxLength { get; set; } = DataDefaults.MaxLength;

    /// <summary>Gets or sets how many prompt tokens are kept (the first ones, DSKD <c>--max-prompt-length</c>).</summary>
    /// <value>The default is 256.</value>
    [Range(1, int.MaxValue)]
    public int MaxPromptLength { get; set; } = DataDefaults.MaxPromptLength;

    /// <summary>Gets or sets the padding side of training batches.</summary>
    /// <value>The default is <see cref="PaddingSide.Right"/>.</value>
    [EnumDataType(typeof(PaddingSide))]
    public PaddingSide PaddingSide { get; set; } = PaddingSide.Right;

    /// <summary>Gets or sets a value indicating whether training batches are padded to <see cref="MaxLength"/> − 1 columns (DSKD pads every batch to a fixed length) instead of the longest row.</summary>
    /// <value>The default is <see langword="false"/>.</value>
    public bool PadToMaxLength { get; set; }

    /// <summary>Gets or sets the number of examples per batch.</summary>
    /// <value>The default is 8.</value>
    [Range(1, int.MaxValue)]
    public int BatchSize { get; set; } = DataDefaults.BatchSize;

    /// <summary>Gets or sets the seed of the per-epoch shuffle: epoch e uses the permutation drawn from (Seed, e).</summary>
    /// <value>The default is 42.</value>
    public int Seed { get; set; } = DataDefaults.Seed;

    /// <summary>Gets or sets a value indicating whether examples are shuffled every epoch.</summary>
    /// <value>The default is <see langword="true"/>.</value>
    public bool Shuffle { get; set; } = true;

    /// <summary>Gets or sets a value indicating whether the last, incomplete batch of an epoch is dropped (DSKD's sampler drops it).</summary>
    /// <value>The default is <see langword="true"/>.</value>
    public bool DropLast { get; set; } = true;

    /// <summary>Gets or sets the prompt template for instruction rows (<c>alpaca</c>, <c>dolly</c>, <c>dolly-qwen2</c>, <c>compact</c>, <c>llama2-chat</c>, <c>chatml</c>).</summary>
    /// <value>The default is <c>dolly</c>.</value>
    public string Template { get; set; } = DataDefaults.Template;

    /// <summary>Checks the cross-field rules and the template name (called by the source-generated options validator).</summary>
    /// <param name="validationContext">The validation context.</param>
    /// <returns>The failures, each naming the option.</returns>
    IEnumerable<ValidationResult> IValidatableObject.Validate(ValidationContext validationContext)
    {
        if (MaxPromptLength >= 1 && MaxPromptLength >= MaxLength)
        {
            yield return new ValidationResult(
                $"{nameof(DataOptions)}.{nameof(MaxPromptLength)} ({MaxPromptLength}) must be smaller than {nameof(MaxLength)} ({MaxLength}), or no response token fits.",
                [nameof(MaxPromptLength), nameof(MaxLength)]);
        }

        string? templateError = null;
        try
        {
            InstructionTemplate.FromName(Template ?? string.Empty);
        }
        catch (ArgumentException ex)
        {
            templateError = ex.Message;
        }

        if (templateError is not null)
        {
            yield return new ValidationResult($"{nameof(DataOptions)}.{nameof(Template)}: {templateError}", [nameof(Template)]);
        }
    }
}

/// <summary>Defaults of <see cref="DataOptions"/>.</summary>
internal static class DataDefaults
{
    public const int MaxLength = 512;
    public const int MaxPromptLength = 256;
    public const int BatchSize = 8;
    public const int Seed = 42;
    public const string Template = "dolly";
}
