using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;

namespace Distill.Data.Synthesis;

/// <summary>
/// Settings of SDFT self-distillation (the seed model rewrites every training response). Defaults follow the official
/// code: LLaMA-Factory's <c>GeneratingArguments</c> (sampled, T = 0.95, top-p 0.7, top-k 50, 512 new tokens), cutoff 1024,
/// the <c>reproduce</c> branch.
/// </summary>
/// <remarks>
/// Deviations, each switchable: the official code keeps empty and truncated rewrites for general datasets; Distill falls back
/// to the original for both (<see cref="RejectEmpty"/>, <see cref="RejectTruncated"/>). The official code generates with
/// batch size 1; Distill batches with left padding (<see cref="BatchSize"/>), which changes which random numbers a row draws
/// but not the distribution it samples from.
/// </remarks>
public sealed class SdftOptions : IValidatableObject
{
    /// <summary>Gets or sets the task type (general, math, code, openfunction, or an official dataset name; see <see cref="SdftTask.All"/>).</summary>
    /// <value>The default is <c>general</c>.</value>
    public string Task { get; set; } = SdftDefaults.Task;

    /// <summary>Gets or sets which official branch to follow where they differ (templates, LoRA dropout, OpenFunctions credit).</summary>
    /// <value>The default is <see cref="SdftBranch.Reproduce"/>, the branch of the paper's numbers.</value>
    [EnumDataType(typeof(SdftBranch))]
    public SdftBranch Branch { get; set; } = SdftBranch.Reproduce;

    /// <summary>Gets or sets the distillation template name; <see langword="null"/> = the task's official one.</summary>
    /// <value>The default is <see langword="null"/>.</value>
    public string? DistillTemplate { get; set; }

    /// <summary>Gets or sets the training template name; <see langword="null"/> = the task's official one.</summary>
    /// <value>The default is <see langword="null"/>.</value>
    public string? TrainTemplate { get; set; }

    /// <summary>Gets or sets the maximum number of generated tokens per rewrite.</summary>
    /// <value>The default is 512.</value>
    [Range(1, int.MaxValue)]
    public int MaxNewTokens { get; set; } = SdftDefaults.MaxNewTokens;

    /// <summary>Gets or sets a value indicating whether to sample (the official default) or decode greedily.</summary>
    /// <value>The default is <see langword="true"/>.</value>
    public bool DoSample { get; set; } = true;

    /// <summary>Gets or sets the sampling temperature.</summary>
    /// <value>The default is 0.95.</value>
    [Range(0.0, double.MaxValue, MinimumIsExclusive = true)]
    public double Temperature { get; set; } = SdftDefaults.Temperature;

    /// <summary>Gets or sets top-p.</summary>
    /// <value>The default is 0.7.</value>
    [Range(0.0, 1.0, MinimumIsExclusive = true)]
    public double TopP { get; set; } = SdftDefaults.TopP;

    /// <summary>Gets or sets top-k.</summary>
    /// <value>The default is 50.</value>
    [Range(0, int.MaxValue)]
    public int TopK { get; set; } = SdftDefaults.TopK;

    /// <summary>Gets or sets the sampling seed; batch k samples with seed <c>Seed · 100003 + k</c>, so a resumed run draws the same numbers.</summary>
    /// <value>The default is 42 (the HF Trainer's default seed).</value>
    public int Seed { get; set; } = SdftDefaults.Seed;

    /// <summary>Gets or sets the number of prompts generated together (left-padded).</summary>
    /// <value>The default is 8.</value>
    [Range(1, int.MaxValue)]
    public int BatchSize { get; set; } = SdftDefaults.BatchSize;

    /// <summary>Gets or sets <c>cutoff_len</c>: the most prompt tokens kept (reproduce: the first <c>CutoffLength</c>; main: LLaMA-Factory's proportional source/target split).</summary>
    /// <value>The default is 1024.</value>
    [Range(2, int.MaxValue)]
    public int CutoffLength { get; set; } = SdftDefaults.CutoffLength;

    /// <summary>Gets or sets a value indicating whether an empty or whitespace-only rewrite falls back to the original.</summary>
    /// <value>The default is <see langword="true"/> (the official code keeps it for general datasets).</value>
    public bool RejectEmpty { get; set; } = true;

    /// <summary>Gets or sets a value indicating whether a rewrite cut off at <see cref="MaxNewTokens"/> falls back to the original.</summary>
    /// <value>The default is <see langword="true"/> (the official code keeps it for general datasets).</value>
    public bool RejectTruncated { get; set; } = true;

    /// <summary>Gets the task type named by <see cref="Task"/>.</summary>
    /// <returns>The task.</returns>
    public SdftTask ResolveTask() => SdftTask.FromName(Task);

    /// <summary>Gets the distillation template (<see cref="DistillTemplate"/> or the task's).</summary>
    /// <returns>The template.</returns>
    public SdftTemplate ResolveDistillTemplate() => DistillTemplate is { } name ? SdftTemplate.FromName(name) : ResolveTask().DistillTemplate;

    /// <summary>Gets the training template (<see cref="TrainTemplate"/> or the task's).</summary>
    /// <returns>The template.</returns>
    public SdftTemplate ResolveTrainTemplate() => TrainTemplate is { } name ? SdftTemplate.FromName(name) : ResolveTask().TrainTemplate;

    /// <summary>Throws <see cref="ArgumentException"/> listing every invalid setting.</summary>
    public void ThrowIfInvalid()
    {
        var result = new SdftOptionsValidator().Validate(null, this);
        if (result.Failed)
        {
            throw new ArgumentException(result.FailureMessage);
        }
    }

    /// <summary>Checks the names of the task and templates and that the distillation template shows the reference (called by the source-generated options validator).</summary>
    /// <param name="validationContext">The validation context.</param>
    /// <returns>The failures, each naming the option.</returns>
    IEnumerable<ValidationResult> IValidatableObject.Validate(ValidationContext validationContext)
    {
        foreach (var (label, resolve) in new (string, Func<object>)[]
        {
            (nameof(Task), ResolveTask),
            (nameof(DistillTemplate), ResolveDistillTemplate),
            (nameof(TrainTemplate), ResolveTrainTemplate),
        })
        {
            string? error = null;
            try
            {
                resolve();
            }
            catch (ArgumentException ex)
            {
                error = ex.Message;
            }

            if (error is not null)
            {
                yield return new ValidationResult($"{nameof(SdftOptions)}.{label}: {error}", [label]);
                yield break; // the template checks repeat an unknown task
            }
        }

        if (!ResolveDistillTemplate().IsDistillation)
        {
            yield return new ValidationResult(
                $"{nameof(SdftOptions)}.{nameof(DistillTemplate)}: '{ResolveDistillTemplate().Name}' has no {{{{resp}}}} slot, so the seed model would never see the reference.",
                [nameof(DistillTemplate)]);
        }
    }
}

/// <summary>Defaults of <see cref="SdftOptions"/>.</summary>
internal static class SdftDefaults
{
    public const string Task = "general";
    public const int MaxNewTokens = 512;
    public const double Temperature = 0.95;
    public const double TopP = 0.7;
    public const int TopK = 50;
    public const int Seed = 42;
    public const int BatchSize = 8;
    public const int CutoffLength = 1024;
}

/// <summary>Validates <see cref="SdftOptions"/>: ranges (data annotations) plus the names of the task and templates (<see cref="IValidatableObject"/>).</summary>
[OptionsValidator]
internal sealed partial class SdftOptionsValidator : IValidateOptions<SdftOptions>
{
}
