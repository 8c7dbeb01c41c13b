using Distill.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Distill.Generation;

/// <summary>
/// Autoregressive decoding for any <see cref="ICausalLM"/>: greedy, or sampling with temperature / top-k / top-p and a seed;
/// batched with left padding; stops on EOS ids or stop strings; incremental with a key/value cache (same tokens and
/// log-probs as full recompute) when the model is a <see cref="CausalLM"/>.
/// </summary>
public static class TextGenerator
{
    /// <summary>Generates continuations of a batch of prompts that all have the same length (no padding).</summary>
    /// <param name="model">The model; it runs in eval mode for the call (its previous mode is restored) and without autograd.</param>
    /// <param name="inputIds">[B, P] int64 prompts, every position a real token.</param>
    /// <param name="options">Decoding options.</param>
    /// <returns>Sequences, generated ids, chosen-token log-probs and lengths.</returns>
    /// <exception cref="ArgumentException">Bad shapes or options, or rows may finish at different steps (stop strings) while no pad or EOS id is known.</exception>
    public static GenerationResult Generate(ICausalLM model, Tensor inputIds, GenerationOptions options) => Generate(model, inputIds, null, options);

    /// <summary>Generates continuations of a left-padded batch of prompts.</summary>
    /// <param name="model">The model; it runs in eval mode for the call (its previous mode is restored) and without autograd.</param>
    /// <param name="inputIds">[B, P] int64 prompts, left-padded.</param>
    /// <param name="attentionMask">[B, P] (1 = token, 0 = left padding); <see langword="null"/> when no prompt is padded (all ones).</param>
    /// <param name="options">Decoding options.</param>
    /// <returns>Sequences, generated ids, chosen-token log-probs and lengths.</returns>
    /// <exception cref="ArgumentException">
    /// Bad shapes or options; or the batch needs padding for rows that finish early (more than one row and stop strings
    /// or EOS ids) while neither <see cref="GenerationOptions.PadTokenId"/> nor an EOS id is known, so there is no id to pad with.
    /// </exception>
    /// <remarks>Positions are <c>cumsum(mask) − 1</c> (pads get 1), as transformers' <c>generate</c> computes them, so a
    /// left-padded row produces the same tokens as the same prompt alone.</remarks>
    public static GenerationResult Generate(ICausalLM model, Tensor inputIds, Tensor? attentionMask, GenerationOptions options)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(inputIds);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        if (inputIds.dim() != 2 || (attentionMask is not null && !attentionMask.shape.SequenceEqual(inputIds.shape)))
        {
            throw new ArgumentException($"inputIds [{string.Join(", ", inputIds.shape)}] and attentionMask [{(attentionMask is null ? "none" : string.Join(", ", attentionMask.shape))}] must both be [B, P].");
        }

        if (inputIds.shape[1] == 0)
        {
            throw new ArgumentException("Prompts must have at least one position (P >= 1).", nameof(inputIds));
        }

        if (inputIds.shape[0] > 1 && options.PadTokenId is null && options.EosTokenIds.Count == 0 && options.StopSequences.Count > 0)
        {
            // A row that meets a stop string finishes while others go on; its remaining positions need a pad id.
            throw new ArgumentException(
                $"Generating a batch of {inputIds.shape[0]} rows with stop strings needs an id to pad the rows that finish first, but {nameof(GenerationOptions)}.{nameof(GenerationOptions.PadTokenId)} is null and {nameof(GenerationOptions.EosTokenIds)} is empty. Set PadTokenId (e.g. the tokenizer's pad or EOS id).",
                nameof(options));
        }

        var module = model.Module;
        var wasTraining = module.training;
        module.eval();
        try
        {
            using var noGrad = torch.no_grad();
            using var scope = torch.NewDisposeScope();
            var result = Run(model, inputIds, attentionMask ?? torch.ones_like(inputIds, dtype: ScalarType.Int64), options);
            result.Sequences.MoveToOuterDisposeScope();
            result.GeneratedIds.MoveToOuterDisposeScope();
            result.LogProbs.MoveToOuterDisposeScope();
            return result;
        }
        finally
        {
            module.train(wasTraining);
        }
    }

    private static GenerationResult Run(ICausalLM model, Tensor inputIds, Tensor attentionMask, GenerationOptions options)
    {
        var device = model.EmbeddingWeight.device;
        var batch = inputIds.shape[0];
        var promptIds = inputIds.to(device).to_type(ScalarType.Int64);
        var mask = attentionMask.to(device).to_type(ScalarType.Int64);
        var positions = mask.cumsum(-1).Sub(1).masked_fill(mask.eq(TorchScalars.Constant(0)), TorchScalars.Constant(1));
        // Never used when neither is known: without EOS ids and stop strings no row finishes early (checked by the caller).
        var pad = options.PadTokenId ?? (options.EosTokenIds.Count > 0 ? options.EosTokenIds[0] : 0);
        var eos = options.EosTokenIds.Count > 0 ? torch.tensor(options.EosTokenIds.ToArray(), device: device) : null;
        using var generator = options.DoSample && options.Seed is { } seed ? new Generator((ulong)seed, device) : null;
        using var cache = options.UseCache && model is CausalLM causal ? causal.CreateCache() : null;

        var tokens = new List<Tensor>();
        var logProbs = new List<Tensor>();
        var unfinished = torch.ones(batch, ScalarType.Bool, device);
        var lengths = torch.zeros(batch, ScalarType.Int64, device);
        var generatedText = options.StopSequences.Count > 0 ? Enumerable.Range(0, (int)batch).Select(_ => new List<long>()).ToArray() : null;
        var lastPositions = positions.narrow(1, positions.shape[1] - 1, 1);

        for (var step = 0; step < options.MaxNewTokens; step++)
        {
            using var stepScope = torch.NewDisposeScope();
            var fullMask = tokens.Count == 0 ? mask : torch.cat([mask, torch.ones(batch, tokens.Count, ScalarType.Int64, device)], 1);
            CausalLMInput input;
            if (cache is not null && step > 0)
            {
                lastPositions = lastPositions.Add(1);
                input = new CausalLMInput { InputIds = tokens[^1], AttentionMask = fullMask, PositionIds = lastPositions, Cache = cache };
            }
            else
            {
                var ids = tokens.Count == 0 ? promptIds : torch.cat([promptIds, .. tokens], 1);
                var pos = tokens.Count == 0
                    ? positions
                    : torch.cat([positions, positions.narrow(1, positions.shape[1] - 1, 1).Add(TorchScalars.Arange(1, tokens.Count + 1, dtype: ScalarType.Int64, device: device).unsqueeze(0))], 1);
                lastPositions = pos.narrow(1, pos.shape[1] - 1, 1);
                input = new CausalLMInput { InputIds = ids, AttentionMask = fullMask, PositionIds = pos, Cache = cache };
            }

            var logits = model.Forward(input).Logits!;
            var last = logits.select(1, -1).to_type(ScalarType.Float32); // [B, V]
            var logp = last.log_softmax(-1);
            var next = options.DoSample ? Sample(last, options, generator) : last.argmax(-1);
            next = torch.where(unfinished, next, next.FullLike(pad));
            var chosen = logp.gather(1, next.unsqueeze(1)).squeeze(1).masked_fill(unfinished.logical_not(), TorchScalars.Constant(0));
            lengths.add_(unfinished.to_type(ScalarType.Int64), TorchScalars.One);

            if (eos is not null)
            {
                unfinished.logical_and_(torch.isin(next, eos).logical_not());
            }

            if (generatedText is not null)
            {
                var nextValues = next.cpu().data<long>().ToArray();
                var active = unfinished.cpu().data<bool>().ToArray();
                var stop = new bool[batch];
                for (var b = 0; b < batch; b++)
                {
                    if (!active[b])
                    {
                        continue;
                    }

                    generatedText[b].Add(nextValues[b]);
                    var text = options.Decode!(generatedText[b]);
                    stop[b] = options.StopSequences.Any(s => text.Contains(s, StringComparison.Ordinal));
                }

                unfinished.logical_and_(torch.tensor(stop, device: device).logical_not());
            }

            tokens.Add(next.unsqueeze(1).MoveToOuterDisposeScope());
            logProbs.Add(chosen.unsqueeze(1).MoveToOuterDisposeScope());
            lastPositions.MoveToOuterDisposeScope();
            if (!unfinished.any().item<bool>())
            {
                break;
            }
        }

        var generated = tokens.Count > 0 ? torch.cat(tokens, 1) : torch.empty(batch, 0, ScalarType.Int64, device);
        var scores = logProbs.Count > 0 ? torch.cat(logProbs, 1) : torch.empty(batch, 0, ScalarType.Float32, device);
        var sequences = torch.cat([promptIds, generated], 1);
        var stopped = unfinished.logical_not().cpu().data<bool>().ToArray();
        if (tokens.Count < options.MaxNewTokens)
        {
            stopped = [.. stopped.Select(_ => true)]; // the loop ended early only because every row stopped
        }

        return new GenerationResult(sequences, generated, scores, lengths.cpu().data<long>().ToArray(), stopped);
    }

    /// <summary>Temperature, top-k, top-p (transformers' order), then one multinomial draw per row.</summary>
    /// <param name="logits">[B, V] float32.</param>
    /// <param name="options">The options.</param>
    /// <param name="generator">The seeded generator, or <see langword="null"/>.</param>
    /// <returns>[B] int64.</returns>
    internal static Tensor Sample(Tensor logits, GenerationOptions options, Generator? generator)
    {
        var scores = options.Temperature != 1.0 ? logits.Div(options.Temperature) : logits;
        var vocab = scores.shape[^1];
        if (options.TopK > 0 && options.TopK < vocab)
        {
            // Keep scores >= the k-th largest (ties at the threshold are kept, as transformers does).
            var kth = scores.topk(options.TopK, -1).values.narrow(1, options.TopK - 1, 1); // [B, 1]
            scores = scores.masked_fill(scores.lt(kth), TorchScalars.Constant(float.NegativeInfinity));
        }

        if (options.TopP < 1.0)
        {
            // Sort ascending; drop tokens whose cumulative probability is <= 1 − p; always keep the most likely one.
            var (sorted, order) = scores.sort(-1, descending: false);
            var cumulative = sorted.softmax(-1).cumsum(-1);
            var removeSorted = cumulative.Le(1 - options.TopP);
            removeSorted.select(1, -1).fill_(TorchScalars.Constant(false));
            var remove = removeSorted.scatter(1, order, removeSorted);
            scores = scores.masked_fill(remove, TorchScalars.Constant(float.NegativeInfinity));
        }

        var probs = scores.softmax(-1);
        return probs.multinomial(1, generator: generator).squeeze(1);
    }
}
