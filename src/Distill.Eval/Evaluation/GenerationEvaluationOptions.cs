using Distill.Generation;

namespace Distill.Eval.Evaluation;

/// <summary>Options of <see cref="GenerationEvaluation"/>: seeds, batching, decoding and scoring.</summary>
public sealed class GenerationEvaluationOptions
{
    /// <summary>Gets or sets the generation seeds; one full pass over the dataset per seed, then mean ± std over seeds.</summary>
    /// <value>The default is 10, 20, 30, 40, 50 (DSKD's evaluation seeds).</value>
    /// <remarks>Greedy decoding ignores the seed, so one seed is enough when <see cref="GenerationOptions.DoSample"/> is false.</remarks>
    public IList<int> Seeds { get; set; } = [.. EvaluatorDefaults.Seeds];

    /// <summary>Gets or sets how many prompts are generated together (left-padded).</summary>
    /// <value>The default is 16.</value>
    public int BatchSize { get; set; } = EvaluatorDefaults.BatchSize;

    /// <summary>
    /// Gets or sets the decoding settings. <see cref="GenerationOptions.Seed"/> is replaced by each run's seed; empty
    /// <see cref="GenerationOptions.EosTokenIds"/> become the tokenizer's EOS id, and a <see langword="null"/>
    /// <see cref="GenerationOptions.PadTokenId"/> becomes the tokenizer's pad id (or EOS).
    /// </summary>
    /// <value>The default is greedy decoding of at most 64 new tokens.</value>
    public GenerationOptions Generation { get; set; } = new();

    /// <summary>Gets or sets a value indicating whether special tokens (EOS, padding) are dropped when decoding.</summary>
    /// <value>The default is <see langword="true"/>.</value>
    public bool SkipSpecialTokens { get; set; } = true;

    /// <summary>Gets or sets the text at whose first occurrence a generation is cut; <see langword="null"/> = no cut.</summary>
    /// <value>The default is <c>&lt;|endoftext|&gt;</c> (DSKD).</value>
    public string? StopText { get; set; } = EvaluatorDefaults.StopText;

    /// <summary>Gets or sets a value indicating whether generations are stripped of surrounding whitespace after the cut.</summary>
    /// <value>The default is <see langword="true"/>.</value>
    public bool Strip { get; set; } = true;

    /// <summary>Gets or sets the factor applied to per-seed means of per-example scores in [0, 1].</summary>
    /// <value>The default is 100.</value>
    public double ScoreScale { get; set; } = EvaluatorDefaults.ScoreScale;

    /// <summary>Gets or sets a value indicating whether the std over seeds uses n − 1 instead of n.</summary>
    /// <value>The default is <see langword="false"/>.</value>
    public bool SampleStandardDeviation { get; set; }

    /// <summary>Gets or sets a value indicating whether prompts use the dataset's teacher tokenisation (to evaluate a teacher on a cross-tokenizer dataset).</summary>
    /// <value>The default is <see langword="false"/>.</value>
    public bool UseTeacherTokenizer { get; set; }
}
