namespace Distill.Eval.Metrics;

/// <summary>A per-example text metric: scores one prediction against its reference answers.</summary>
/// <remarks>
/// Scores are in [0, 1] (the evaluator multiplies the mean by <see cref="Evaluation.EvaluatorOptions.ScoreScale"/>);
/// with several references the metric takes the best one, as DSKD's <c>metric_max_over_ground_truths</c> and the SQuAD
/// script do. Implementations are stateless and thread-safe.
/// </remarks>
public interface IMetric
{
    /// <summary>Gets the metric's registered name (e.g. <c>rougeL</c>, <c>exact_match</c>, <c>squad_f1</c>, <c>gsm8k_accuracy</c>).</summary>
    string Name { get; }

    /// <summary>Scores one prediction.</summary>
    /// <param name="prediction">The post-processed generation.</param>
    /// <param name="references">One or more reference answers; an empty list scores 0.</param>
    /// <returns>The score in [0, 1].</returns>
    double Score(string prediction, IReadOnlyList<string> references);
}
