using System.ComponentModel.DataAnnotations;
using Distill.Eval.Metrics;
using Microsoft.Extensions.Options;

namespace Distill.Eval.Evaluation;

/// <summary>Options of <see cref="SeededEvaluator"/> and of the metrics registered by <c>AddDistillEval</c>.</summary>
public sealed class EvaluatorOptions : IValidatableObject
{
    /// <summary>Gets or sets the generation seeds; one full pass over the dataset per seed, then mean ± std over seeds.</summary>
    /// <value>The default is 10, 20, 30, 40, 50 (DSKD's evaluation seeds).</value>
    public IList<int> Seeds { get; set; } = [.. EvaluatorDefaults.Seeds];

    /// <summary>Gets or sets the registered names of the metrics to compute.</summary>
    /// <value>The default is <c>rougeL</c> and <c>dskd_exact_match</c> (what DSKD reports).</value>
    public IList<string> Metrics { get; set; } = [.. EvaluatorDefaults.Metrics];

    /// <summary>Gets or sets how many examples go to the generation delegate per call.</summary>
    /// <value>The default is 16 (DSKD's eval batch for TinyLLaMA; 32 for GPT-2).</value>
    [Range(1, int.MaxValue)]
    public int BatchSize { get; set; } = EvaluatorDefaults.BatchSize;

    /// <summary>Gets or sets the text at whose first occurrence a generation is cut (DSKD: <c>&lt;|endoftext|&gt;</c>); <see langword="null"/> or empty = no cut.</summary>
    /// <value>The default is <c>&lt;|endoftext|&gt;</c>.</value>
    public string? StopText { get; set; } = EvaluatorDefaults.StopText;

    /// <summary>Gets or sets a value indicating whether generations are stripped of leading and trailing whitespace (Python <c>str.strip()</c>) after the cut.</summary>
    /// <value>The default is <see langword="true"/>.</value>
    public bool Strip { get; set; } = true;

    /// <summary>Gets or sets the factor applied to per-seed means of per-example scores in [0, 1].</summary>
    /// <value>The default is 100 (DSKD and the SQuAD script report percentages).</value>
    [Range(0.0, double.MaxValue, MinimumIsExclusive = true)]
    public double ScoreScale { get; set; } = EvaluatorDefaults.ScoreScale;

    /// <summary>Gets or sets a value indicating whether the standard deviation over seeds uses n − 1 (sample) instead of n (population, numpy's default).</summary>
    /// <value>The default is <see langword="false"/>.</value>
    public bool SampleStandardDeviation { get; set; }

    /// <summary>Gets or sets the answer rule of the registered <c>gsm8k_accuracy</c> metric.</summary>
    /// <value>The default is <see cref="Gsm8kAnswerRule.FinalNumber"/>.</value>
    [EnumDataType(typeof(Gsm8kAnswerRule))]
    public Gsm8kAnswerRule Gsm8kRule { get; set; } = Gsm8kAnswerRule.FinalNumber;

    /// <summary>Checks the contents of <see cref="Seeds"/> and <see cref="Metrics"/> (called by the source-generated options validator).</summary>
    /// <param name="validationContext">The validation context.</param>
    /// <returns>The failures, each naming the option.</returns>
    IEnumerable<ValidationResult> IValidatableObject.Validate(ValidationContext validationContext)
    {
        if (Seeds is null || Seeds.Count == 0)
        {
            yield return new ValidationResult($"{nameof(EvaluatorOptions)}.{nameof(Seeds)} must list at least one seed.", [nameof(Seeds)]);
        }
        else if (Seeds.Distinct().Count() != Seeds.Count)
        {
            yield return new ValidationResult($"{nameof(EvaluatorOptions)}.{nameof(Seeds)} must be distinct; got [{string.Join(", ", Seeds)}].", [nameof(Seeds)]);
        }

        if (Metrics is null || Metrics.Count == 0)
        {
            yield return new ValidationResult($"{nameof(EvaluatorOptions)}.{nameof(Metrics)} must name at least one metric.", [nameof(Metrics)]);
        }
        else if (Metrics.Any(string.IsNullOrWhiteSpace))
        {
            yield return new ValidationResult($"{nameof(EvaluatorOptions)}.{nameof(Metrics)} must not contain empty names.", [nameof(Metrics)]);
        }
    }
}

/// <summary>Defaults of <see cref="EvaluatorOptions"/>.</summary>
internal static class EvaluatorDefaults
{
    public const int BatchSize = 16;
    public const string StopText = "<|endoftext|>";
    public const double ScoreScale = 100;

    public static readonly int[] Seeds = [10, 20, 30, 40, 50];
    public static readonly string[] Metrics = [RougeLMetric.MetricName, DskdExactMatchMetric.MetricName];
}

/// <summary>Validates <see cref="EvaluatorOptions"/> at start-up (data annotations plus <see cref="IValidatableObject"/>).</summary>
[OptionsValidator]
internal sealed partial class EvaluatorOptionsValidator : IValidateOptions<EvaluatorOptions>
{
}
