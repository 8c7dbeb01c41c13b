using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace Distill.Data;

/// <summary>Computes top-k log-probabilities with a local <see cref="ICausalLM"/> (right-padded batches, no gradients, eval mode).</summary>
/// <remarks>
/// Log-probabilities are float32 log_softmax of the logits at temperature 1; the tail is log Σ of the rest, computed directly.
/// Each run of consecutive scored positions is scored on a view of the forward's logits (no gather, no log_softmax copy;
/// blocks of at most 2^24 logits): float32 logits in host memory by a single-pass managed top-k and tail, others by torch
/// ops with one bulk copy per output.
/// </remarks>
public sealed class LocalModelTopKProducer : ITopKProducer
{
    private readonly ICausalLM model;
    private readonly long maxBlockElements;
    private readonly bool hostTopK;

    /// <summary>Wraps a teacher model (frozen and switched to eval mode here).</summary>
    /// <param name="model">The teacher.</param>
    /// <param name="name">A name for logs.</param>
    public LocalModelTopKProducer(ICausalLM model, string name = "local teacher")
        : this(model, name, 1L << 24, hostTopK: true)
    {
    }

    /// <summary>Wraps a teacher model, scoring at most <paramref name="maxBlockElements"/> logits per block (tests use small blocks).</summary>
    /// <param name="model">The teacher.</param>
    /// <param name="name">A name for logs.</param>
    /// <param name="maxBlockElements">The most logits one block of positions may hold.</param>
    /// <param name="hostTopK">Whether float32 logits in host memory are scored by <see cref="HostTopK"/> (else by torch ops).</param>
    internal LocalModelTopKProducer(ICausalLM model, string name, long maxBlockElements, bool hostTopK)
    {
        this.hostTopK = hostTopK;
        ArgumentNullException.ThrowIfNull(model);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxBlockElements, 1);
        this.model = model;
        this.maxBlockElements = maxBlockElements;
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

        // Scored positions come in runs of consecutive positions (a response), each a contiguous view of the flattened
        // [B·W, V] logits: no gather. Blocks bound the [n, V] temporary of logsumexp (about 64 MiB of float32).
        var block = (int)Math.Max(1, maxBlockElements / vocab);
        var at = 0;
        for (var i = 0; i < examples.Count; i++)
        {
            var positions = examples[i].ScoredPositions;
            for (var j = 0; j < positions.Count;)
            {
                var n = 1;
                while (n < block && j + n < positions.Count && positions[j + n] == positions[j] + n)
                {
                    n++;
                }

                Score(rows.narrow(0, ((long)i * width) + positions[j], n), k, topIds.AsSpan(at * k, n * k), topLogProbs.AsSpan(at * k, n * k), tails.AsSpan(at, n));
                at += n;
                j += n;
            }
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

    /// <summary>
    /// Top-k log-probabilities and log tail mass of <paramref name="logits"/> [n, V]: on the host by <see cref="HostTopK"/>,
    /// elsewhere by torch ops (the logits are overwritten: the top-k entries become −∞): log p = x − logsumexp(x) for the k
    /// largest x, tail = logsumexp(the rest) − logsumexp(x).
    /// </summary>
    private void Score(Tensor logits, int k, Span<int> ids, Span<float> logProbs, Span<float> tail)
    {
        using var scope = NewDisposeScope();
        var x = logits.to(ScalarType.Float32);                                   // a view when the model computes in float32
        if (hostTopK && x.device_type == TorchSharp.DeviceType.CPU && x.is_contiguous())
        {
            HostTopK.Score(MemoryMarshal.Cast<byte, float>(x.bytes), (int)x.shape[1], k, ids, logProbs, tail);
            return;
        }

        var lse = x.logsumexp(-1, keepdim: true);                                // [n, 1]
        var (values, indices) = x.topk(k, dim: -1);                              // [n, k], descending
        var rest = x.scatter_(-1, indices, full_like(values, TorchScalars.Constant(double.NegativeInfinity))).logsumexp(-1, keepdim: true);
        indices.to(ScalarType.Int32).cpu().data<int>().CopyTo(ids);
        (values - lse).cpu().data<float>().CopyTo(logProbs);
        (rest - lse).cpu().data<float>().CopyTo(tail);
    }
}
