using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;

namespace Distill.Data.Synthesis;

/// <summary>What to do with a SeqKD row that is unusual: an answer cut at the token limit, an empty answer, an over-long prompt.</summary>
public enum SeqKdRowAction
{
    /// <summary>Write the row (counted in the statistics).</summary>
    Keep,

    /// <summary>Leave the row out (counted in the statistics).</summary>
    Drop,

    /// <summary>Stop with an <see cref="InvalidDataException"/> naming the example.</summary>
    Throw,
}

/// <summary>
/// Settings of SeqKD teacher-answer generation (<see cref="SeqKdGenerator"/>): decoding (greedy or sampled, k answers per
/// prompt), batching and chunking, the seed, and what to do with truncated or empty answers and over-long prompts.
/// </summary>
/// <remarks>
/// Defaults follow ULD's teacher-answer generator (llm-distillation <c>datasets/generator.py</c>): greedy, one answer per
/// prompt, left padding with pad = EOS. Its 150-token limit is <see cref="MaxNewTokens"/>'s default too.
/// </remarks>
public sealed class SeqKdOptions : IValidatableObject
{
    /// <summary>Gets or sets the instruction template that renders <see cref="InstructionExample"/> prompts (see <see cref="InstructionTemplate.FromName"/>); unused for <see cref="TextExample"/> prompts.</summary>
    /// <value>The default is <c>dolly</c> (Distill.Data's default template).</value>
    [Required]
    public string Template { get; set; } = "dolly";

    /// <summary>Gets or sets the teacher's name written to the manifest (e.g. its HF id or folder name); <see langword="null"/> = the model type.</summary>
    /// <value>The default is <see langword="null"/>.</value>
    public string? TeacherName { get; set; }

    /// <summary>Gets or sets the maximum number of generated tokens per answer.</summary>
    /// <value>The default is 150 (ULD's generator).</value>
    [Range(1, int.MaxValue)]
    public int MaxNewTokens { get; set; } = 150;

    /// <summary>Gets or sets a value indicating whether to sample (true) or decode greedily (false).</summary>
    /// <value>The default is <see langword="false"/>.</value>
    public bool DoSample { get; set; }

    /// <summary>Gets or sets the sampling temperature.</summary>
    /// <value>The default is 1.</value>
    [Range(0.0, double.MaxValue, MinimumIsExclusive = true)]
    public double Temperature { get; set; } = 1.0;

    /// <summary>Gets or sets top-k (0 = off).</summary>
    /// <value>The default is 0.</value>
    [Range(0, int.MaxValue)]
    public int TopK { get; set; }

    /// <summary>Gets or sets top-p (1 = off).</summary>
    /// <value>The default is 1.</value>
    [Range(0.0, 1.0, MinimumIsExclusive = true)]
    public double TopP { get; set; } = 1.0;

    /// <summary>Gets or sets k, the number of answers per prompt (more than one needs <see cref="DoSample"/>).</summary>
    /// <value>The default is 1.</value>
    [Range(1, int.MaxValue)]
    public int NumSamples { get; set; } = 1;

    /// <summary>Gets or sets the number of rows (prompt × sample) decoded together, left-padded.</summary>
    /// <value>The default is 8.</value>
    [Range(1, int.MaxValue)]
    public int BatchSize { get; set; } = 8;

    /// <summary>Gets or sets the number of prompts per chunk: the unit written atomically and resumed.</summary>
    /// <value>The default is 64.</value>
    [Range(1, int.MaxValue)]
    public int ChunkSize { get; set; } = 64;

    /// <summary>Gets or sets the seed; batch b of chunk c samples with its own generator seeded from (seed, c, b), so a resumed run draws the same numbers.</summary>
    /// <value>The default is 42.</value>
    public int Seed { get; set; } = 42;

    /// <summary>Gets or sets a value indicating whether prompts start with the tokenizer's BOS (as <see cref="SequenceFormat.PrependBos"/> when training).</summary>
    /// <value>The default is <see langword="false"/> (Distill.Data's default format).</value>
    public bool PrependBos { get; set; }

    /// <summary>Gets or sets the most prompt tokens; <see langword="null"/> = the teacher's <c>max_position_embeddings</c> − <see cref="MaxNewTokens"/>.</summary>
    /// <value>The default is <see langword="null"/>.</value>
    [Range(1, int.MaxValue)]
    public int? MaxPromptTokens { get; set; }

    /// <summary>Gets or sets a value indicating whether to keep only the first line of an answer (ULD's generator does).</summary>
    /// <value>The default is <see langword="false"/>.</value>
    public bool FirstLineOnly { get; set; }

    /// <summary>Gets or sets what to do with an answer that reached <see cref="MaxNewTokens"/> without EOS.</summary>
    /// <value>The default is <see cref="SeqKdRowAction.Keep"/> (as ULD's and ATKD's generators do).</value>
    [EnumDataType(typeof(SeqKdRowAction))]
    public SeqKdRowAction TruncatedAnswers { get; set; } = SeqKdRowAction.Keep;

    /// <summary>Gets or sets what to do with an empty or whitespace-only answer.</summary>
    /// <value>The default is <see cref="SeqKdRowAction.Drop"/> (ULD's <c>process.py</c> drops them).</value>
    [EnumDataType(typeof(SeqKdRowAction))]
    public SeqKdRowAction EmptyAnswers { get; set; } = SeqKdRowAction.Drop;

    /// <summary>Gets or sets what to do with a prompt longer than the prompt limit (<see cref="SeqKdRowAction.Drop"/> or <see cref="SeqKdRowAction.Throw"/>; prompts are never cut).</summary>
    /// <value>The default is <see cref="SeqKdRowAction.Drop"/>.</value>
    [EnumDataType(typeof(SeqKdRowAction))]
    public SeqKdRowAction OverlongPrompts { get; set; } = SeqKdRowAction.Drop;

    /// <summary>Gets the template named by <see cref="Template"/>.</summary>
    /// <returns>The template.</returns>
    public InstructionTemplate ResolveTemplate() => InstructionTemplate.FromName(Template);

    /// <summary>Throws <see cref="ArgumentException"/> listing every invalid setting.</summary>
    public void ThrowIfInvalid()
    {
        var result = new SeqKdOptionsValidator().Validate(null, this);
        if (result.Failed)
        {
            throw new ArgumentException(result.FailureMessage);
        }
    }

    /// <summary>Cross-field checks (called by the source-generated options validator).</summary>
    /// <param name="validationContext">The validation context.</param>
    /// <returns>The failures, each naming the option.</returns>
    IEnumerable<ValidationResult> IValidatableObject.Validate(ValidationContext validationContext)
    {
        string? templateError = null;
        try
        {
            ResolveTemplate();
        }
        catch (ArgumentException ex)
        {
            templateError = ex.Message;
        }

        if (templateError is not null)
        {
            yield return new ValidationResult($"{nameof(SeqKdOptions)}.{nameof(Template)}: {templateError}", [nameof(Template)]);
        }

        if (NumSamples > 1 && !DoSample)
        {
            yield return new ValidationResult(
                $"{nameof(SeqKdOptions)}.{nameof(NumSamples)} = {NumSamples} needs {nameof(DoSample)} = true: greedy answers to one prompt are all the same.",
                [nameof(NumSamples), nameof(DoSample)]);
        }

        if (OverlongPrompts == SeqKdRowAction.Keep)
        {
            yield return new ValidationResult(
                $"{nameof(SeqKdOptions)}.{nameof(OverlongPrompts)}: must be Drop or Throw (an over-long prompt is never cut, so it cannot be kept).",
                [nameof(OverlongPrompts)]);
        }
    }
}

/// <summary>Validates <see cref="SeqKdOptions"/>: ranges (data annotations) plus the cross-field checks (<see cref="IValidatableObject"/>).</summary>
[OptionsValidator]
internal sealed partial class SeqKdOptionsValidator : IValidateOptions<SeqKdOptions>
{
}
