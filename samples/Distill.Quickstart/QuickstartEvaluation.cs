using Distill.Data;
using Distill.Eval.Evaluation;
using Distill.Eval.Metrics;
using Distill.Generation;
using Distill.Models;
using Microsoft.Extensions.Logging;
using static TorchSharp.torch;

namespace Distill.Quickstart;

/// <summary>How the quickstart scores a model: greedy answers (exact match) and the teacher-forced answer loss.</summary>
internal static class QuickstartEvaluation
{
    /// <summary>Greedy answers for every example, scored with DSKD's exact match (×100).</summary>
    /// <param name="model">The model.</param>
    /// <param name="set">Prompts and references.</param>
    /// <param name="eos">EOS/pad id.</param>
    /// <param name="settings">Generation length.</param>
    /// <param name="loggers">Loggers.</param>
    /// <param name="cancellationToken">Checked between batches.</param>
    /// <returns>EM and the post-processed predictions in dataset order.</returns>
    public static (double ExactMatch, IReadOnlyList<string> Predictions) Generate(CausalLM model, TokenizedDataset set, long eos, QuickstartSettings settings, ILoggerFactory loggers, CancellationToken cancellationToken)
    {
        // Greedy decoding is deterministic, so one evaluation seed is enough; the spread reported comes from training seeds.
        var report = GenerationEvaluation.Evaluate(model, set, [new DskdExactMatchMetric()], new GenerationEvaluationOptions
        {
            Seeds = [settings.Seed],
            BatchSize = 50,
            StopText = null,
            Generation = new GenerationOptions { MaxNewTokens = settings.MaxNewTokens, EosTokenIds = [eos], PadTokenId = eos },
        }, loggers.CreateLogger<SeededEvaluator>(), cancellationToken);
        return (report.Metrics[DskdExactMatchMetric.MetricName].Mean, [.. report.Runs[0].Predictions.Select(p => p.Prediction)]);
    }

    /// <summary>Teacher-forced mean token cross-entropy of the reference answers.</summary>
    /// <param name="model">The model.</param>
    /// <param name="set">The examples.</param>
    /// <returns>Mean NLL per answer token.</returns>
    public static double AnswerLoss(CausalLM model, TokenizedDataset set)
    {
        using var noGrad = no_grad();
        var training = model.training;
        model.eval();
        try
        {
            var nll = default(PerplexityResult);
            for (var start = 0; start < set.Count; start += 50)
            {
                using var scope = NewDisposeScope();
                using var batch = set.Collate([.. Enumerable.Range(start, Math.Min(50, set.Count - start))]);
                var device = model.Device;
                var logits = model.Forward(new CausalLMInput { InputIds = batch.InputIds.to(device), AttentionMask = batch.AttentionMask.to(device), PositionIds = batch.PositionIds?.to(device) }).Logits!;
                nll = nll.Add(Perplexity.FromLogits(logits, batch.Labels.to(device)));
            }

            return nll.MeanNll;
        }
        finally
        {
            model.train(training);
        }
    }
}
