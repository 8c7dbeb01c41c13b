using static TorchSharp.torch;

namespace Distill.Data;

/// <summary>Computes top-k log-probabilities with a local <see cref="ICausalLM"/> (right-padded batches, no gradients, eval mode).</summary>
/// <remarks>
/// Log-probabilities are float32 log_softmax of the logits at temperature 1; the tail is log Σ of the rest, computed directly.
/// All scored positions of a call go through one log_softmax, top-k and tail (in blocks of at most 2^24 logits) and come back
/// to the host in one bulk copy per output.
/// </remarks>
public sealed class LocalModelTopKProducer : ITopKProducer
{
    private const long MaxBlockElements = 1L << 24;

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
        var total = 0;
        for (var i = 0; i < examples.Count; i++)
        {
            var row = examples[i].InputIds;
            for (var j = 0; j < row.Count; j++)
            {
                ids[(i * width) + j] = row[j];
            }

            mask.AsSpan(i * width, row.Count).Fill(1);
            total += examples[i].ScoredPositions.Count;
        }

        // Every scored position of the batch as a row of the flattened [B·W, V] logits.
        var flat = new long[total];
        var at = 0;
        for (var i = 0; i < examples.Count; i++)
        {
            foreach (var p in examples[i].ScoredPositions)
            {
                flat[at++] = ((long)i * width) + p;
            }
        }

        var device = model.LmHeadWeight.device;
        var output = model.Forward(new CausalLMInput
        {
            InputIds = tensor(ids, [examples.Count, width]).to(device),
            AttentionMask = tensor(mask, [examples.Count, width]).to(device),
        });
        var logits = output.Logits ?? throw new InvalidOperationException($"{Description} returned no logits.");
        var vocab = logits.shape[^1];
        var rows = logits.reshape(-1, vocab);
        var topIds = new int[total * k];
        var topLogProbs = new float[total * k];
        var tails = new float[total];

        // Blocks of positions bound the [n, V] temporaries (about 64 MiB of float32) whatever the vocabulary and batch.
        var block = (int)Math.Max(1, Math.Min(total, MaxBlockElements / vocab));
        for (var first = 0; first < total; first += block)
        {
            var n = Math.Min(block, total - first);
            using var inner = NewDisposeScope();
            var logProbs = rows.index_select(0, tensor(flat.AsSpan(first, n).ToArray()).to(device)).to(ScalarType.Float32).log_softmax(-1); // [n, V]
            var (values, indices) = logProbs.topk(k, dim: -1);                                       // [n, k], descending
            var tail = logProbs.scatter_(-1, indices, full_like(values, double.NegativeInfinity)).logsumexp(-1); // [n], in place: no copy of [n, V]
            indices.to(ScalarType.Int32).cpu().data<int>().CopyTo(topIds.AsSpan(first * k, n * k));
            values.cpu().data<float>().CopyTo(topLogProbs.AsSpan(first * k, n * k));
            tail.cpu().data<float>().CopyTo(tails.AsSpan(first, n));
        }

        var results = new TopKSequence[examples.Count];
        at = 0;
        for (var i = 0; i < examples.Count; i++)
        {
            var n = examples[i].ScoredPositions.Count;
            results[i] = new TopKSequence(topIds[(at * k)..((at + n) * k)], topLogProbs[(at * k)..((at + n) * k)], tails[at..(at + n)]);
            at += n;
        }

        return Task.FromResult<IReadOnlyList<TopKSequence>>(results);
    }
}
