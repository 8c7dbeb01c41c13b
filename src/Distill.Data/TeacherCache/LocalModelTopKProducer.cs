using static TorchSharp.torch;

namespace Distill.Data;

/// <summary>Computes top-k log-probabilities with a local <see cref="ICausalLM"/> (right-padded batches, no gradients, eval mode).</summary>
/// <remarks>Log-probabilities are float32 log_softmax of the logits at temperature 1; the tail is log Σ of the rest, computed directly.</remarks>
public sealed class LocalModelTopKProducer : ITopKProducer
{
    private readonly ICausalLM model;

    /// <summary>Wraps a teacher model (frozen and switched to eval mode here).</summary>
    /// <param name="model">The teacher.</param>
    /// <param name="name">A name for logs.</param>
    public LocalModelTopKProducer(ICausalLM model, string name = "local teacher")
    {
        ArgumentNullException.ThrowIfNull(model);
        this.model = model;
        foreach (var p in model.Module.parameters())
        {
            p.requires_grad = false;
        }

        model.Module.eval();
        Description = $"{name} ({model.Config.ModelType}, V = {model.Config.VocabSize})";
    }

    /// <inheritdoc />
    public string Description { get; }

    /// <inheritdoc />
    public Task<IReadOnlyList<TopKSequence>> ProduceAsync(IReadOnlyList<TeacherCacheExample> examples, int k, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(examples);
        cancellationToken.ThrowIfCancellationRequested();
        ArgumentOutOfRangeException.ThrowIfLessThan(k, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(k, model.Config.VocabSize);
        if (examples.Count == 0)
        {
            return Task.FromResult<IReadOnlyList<TopKSequence>>([]);
        }

        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var width = examples.Max(e => e.InputIds.Count);
        var ids = new long[examples.Count * width];
        var mask = new long[examples.Count * width];
        for (var i = 0; i < examples.Count; i++)
        {
            for (var j = 0; j < examples[i].InputIds.Count; j++)
            {
                ids[(i * width) + j] = examples[i].InputIds[j];
                mask[(i * width) + j] = 1;
            }
        }

        var device = model.LmHeadWeight.device;
        var output = model.Forward(new CausalLMInput
        {
            InputIds = tensor(ids, [examples.Count, width]).to(device),
            AttentionMask = tensor(mask, [examples.Count, width]).to(device),
        });
        var logits = output.Logits ?? throw new InvalidOperationException($"{Description} returned no logits.");
        var results = new TopKSequence[examples.Count];
        for (var i = 0; i < examples.Count; i++)
        {
            var positions = examples[i].ScoredPositions;
            if (positions.Count == 0)
            {
                results[i] = new TopKSequence([], [], []);
                continue;
            }

            var at = tensor(positions.Select(p => (long)p).ToArray()).to(device);
            var logProbs = logits[i].index_select(0, at).to(ScalarType.Float32).log_softmax(-1);  // [n, V]
            var (values, indices) = logProbs.topk(k, dim: -1);                                       // [n, k], descending
            var tail = logProbs.scatter(-1, indices, full_like(values, TorchScalars.Constant(double.NegativeInfinity))).logsumexp(-1); // [n]
            results[i] = new TopKSequence(
                indices.to(ScalarType.Int32).cpu().data<int>().ToArray(),
                values.cpu().data<float>().ToArray(),
                tail.cpu().data<float>().ToArray());
        }

        return Task.FromResult<IReadOnlyList<TopKSequence>>(results);
    }
}
