using Distill.Data;
using Distill.Eval.Evaluation;
using Distill.Eval.Metrics;
using Distill.Generation;
using Distill.Models;

namespace Distill.CrossTokenizer;

/// <summary>Greedy answers scored with DSKD's exact match and ROUGE-L (both ×100), through Distill.Eval's generation evaluation.</summary>
public static class Scoring
{
    /// <summary>New tokens per greedy answer (the longest bundled answer is 11 characters: 11 byte tokens + EOS).</summary>
    public const int MaxNewTokens = 16;

    /// <summary>Generates a greedy answer for every example of <paramref name="set"/> and scores it against the references.</summary>
    /// <param name="model">The model.</param>
    /// <param name="set">Prompts and references, tokenised with the model's tokenizer (the student side of the dataset).</param>
    /// <param name="cancellationToken">Checked between batches.</param>
    /// <returns>EM and ROUGE-L (×100), and each example's decoded answer and exact match (0 or 100), in dataset order.</returns>
    public static (double ExactMatch, double RougeL, IReadOnlyList<(string Answer, double ExactMatch)> Examples) Evaluate(CausalLM model, TokenizedDataset set, CancellationToken cancellationToken = default)
    {
        var eos = TokenizedDataset.PadId(set.StudentTokenizer);
        var report = GenerationEvaluation.Evaluate(model, set, [new DskdExactMatchMetric(), new RougeLMetric()], new GenerationEvaluationOptions
        {
            Seeds = [0],   // greedy decoding is deterministic: one seed is enough
            BatchSize = 100,
            StopText = null,
            Generation = new GenerationOptions { MaxNewTokens = MaxNewTokens, EosTokenIds = [eos], PadTokenId = eos },
        }, cancellationToken: cancellationToken);
        var answers = report.Runs[0].Predictions.OrderBy(p => int.Parse(p.Id, System.Globalization.CultureInfo.InvariantCulture))
            .Select(p => (p.Prediction, 100 * p.Scores[DskdExactMatchMetric.MetricName])).ToList();   // per-example scores are unscaled (0 or 1)
        return (report.Metrics[DskdExactMatchMetric.MetricName].Mean, report.Metrics[RougeLMetric.MetricName].Mean, answers);
    }
}
