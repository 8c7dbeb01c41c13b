using TorchSharp;
using static TorchSharp.torch;

namespace Distill.Eval.Metrics;

/// <summary>Summed negative log-likelihood over scored tokens and the resulting perplexity.</summary>
/// <param name="TotalNll">Σ −log p(label) over positions whose label ≠ −100 (nats).</param>
/// <param name="TokenCount">Number of scored positions.</param>
public readonly record struct PerplexityResult(double TotalNll, long TokenCount)
{
    /// <summary>Gets the mean NLL per scored token, or NaN when no token was scored.</summary>
    public double MeanNll => TokenCount > 0 ? TotalNll / TokenCount : double.NaN;

    /// <summary>Gets exp(mean NLL), or NaN when no token was scored.</summary>
    public double Perplexity => Math.Exp(MeanNll);

    /// <summary>Adds another partial result (token-weighted, so batches of any size combine exactly).</summary>
    /// <param name="other">The other partial result.</param>
    /// <returns>The combined result.</returns>
    public PerplexityResult Add(PerplexityResult other) => new(TotalNll + other.TotalNll, TokenCount + other.TokenCount);
}

/// <summary>
/// Perplexity of a causal LM over a dataset: exp(Σ NLL / Σ count) over all scored tokens of all batches (a
/// token-weighted corpus perplexity, not a mean of per-batch perplexities).
/// </summary>
/// <remarks>
/// Labels follow the <see cref="DistillationBatch"/> convention: already aligned with the logits (no shift here) and
/// −100 for positions that are not scored. Log-softmax is computed in float32 whatever the model dtype.
/// </remarks>
public static class Perplexity
{
    /// <summary>Summed NLL and token count of one batch of logits.</summary>
    /// <param name="logits">[B, T, V] (any float dtype).</param>
    /// <param name="labels">[B, T] int64, aligned with <paramref name="logits"/>; −100 = ignored.</param>
    /// <returns>The partial result of this batch.</returns>
    public static PerplexityResult FromLogits(Tensor logits, Tensor labels)
    {
        ArgumentNullException.ThrowIfNull(logits);
        ArgumentNullException.ThrowIfNull(labels);
        if (logits.dim() != 3 || labels.dim() != 2 || logits.shape[0] != labels.shape[0] || logits.shape[1] != labels.shape[1])
        {
            throw new ArgumentException(
                $"Expected logits [B, T, V] and labels [B, T]; got logits [{string.Join(", ", logits.shape)}] and labels [{string.Join(", ", labels.shape)}].",
                nameof(labels));
        }

        using var scope = torch.NewDisposeScope();
        var vocab = logits.shape[2];
        var flatLogits = logits.reshape(-1, vocab).to_type(ScalarType.Float32); // [B*T, V]
        var flatLabels = labels.reshape(-1).to(logits.device); // [B*T]
        var count = flatLabels.ne(TorchScalars.Constant(DistillationBatch.IgnoreIndex)).sum().item<long>();
        if (count == 0)
        {
            return new PerplexityResult(0, 0);
        }

        var nll = nn.functional.cross_entropy(flatLogits, flatLabels, ignore_index: DistillationBatch.IgnoreIndex, reduction: nn.Reduction.Sum);
        return new PerplexityResult(nll.to_type(ScalarType.Float64).item<double>(), count);
    }

    /// <summary>Runs <paramref name="model"/> over <paramref name="batches"/> without gradients, in eval mode, and accumulates NLL.</summary>
    /// <param name="model">The model; its train/eval mode is restored afterwards.</param>
    /// <param name="batches">Batches on the model's device (student tensors are used; labels aligned with logits).</param>
    /// <param name="cancellationToken">Checked between batches.</param>
    /// <returns>The corpus-level result.</returns>
    public static PerplexityResult Compute(ICausalLM model, IEnumerable<DistillationBatch> batches, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(batches);
        var wasTraining = model.Module.training;
        model.Module.eval();
        try
        {
            using var noGrad = torch.no_grad();
            var total = default(PerplexityResult);
            foreach (var batch in batches)
            {
                cancellationToken.ThrowIfCancellationRequested();
                using var scope = torch.NewDisposeScope();
                var output = model.Forward(new CausalLMInput
                {
                    InputIds = batch.InputIds,
                    AttentionMask = batch.AttentionMask,
                    PositionIds = batch.PositionIds,
                });
                var logits = output.Logits
                    ?? throw new InvalidOperationException($"{model.GetType().Name}.Forward returned no logits although ComputeLogits was true.");
                total = total.Add(FromLogits(logits, batch.Labels));
            }

            return total;
        }
        finally
        {
            if (wasTraining)
            {
                model.Module.train();
            }
        }
    }
}
