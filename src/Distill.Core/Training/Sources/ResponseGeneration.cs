using System.Diagnostics;
using static TorchSharp.torch;

namespace Distill.Training.Sources;

/// <summary>The resolved generation settings of a source: EOS and pad ids, new-token budget and context window.</summary>
internal sealed record GenerationSettings(long[] EosTokenIds, long PadTokenId, int MaxNewTokens, int MaxSequenceLength, SampleSourceOptions Options)
{
    /// <summary>Resolves the options against the student's configuration.</summary>
    public static GenerationSettings Resolve(ICausalLM student, SampleSourceOptions options, int defaultMaxNewTokens)
    {
        var eos = options.EosTokenIds.Count > 0 ? options.EosTokenIds.ToArray() : student.Config.EosTokenIds.ToArray();
        var pad = options.PadTokenId ?? student.Config.PadTokenId ?? (eos.Length > 0 ? eos[0] : (long?)null)
            ?? throw new ArgumentException($"The sample source needs a pad id: {nameof(SampleSourceOptions)}.{nameof(SampleSourceOptions.PadTokenId)} is null and the student's config has neither pad_token_id nor eos_token_id.", nameof(options));
        var vocab = student.Config.VocabSize;
        foreach (var id in eos.Append(pad))
        {
            if (id < 0 || id >= vocab)
            {
                throw new ArgumentException($"The sample source's EOS/pad id {id} is outside the student's vocabulary [0, {vocab}).", nameof(options));
            }
        }

        var maxNew = options.MaxNewTokens ?? defaultMaxNewTokens;
        var maxLength = options.MaxSequenceLength ?? student.Config.MaxPositionEmbeddings;
        if (maxNew >= maxLength)
        {
            throw new ArgumentException($"{nameof(SampleSourceOptions.MaxNewTokens)} = {maxNew} leaves no room for a prompt in a context window of {maxLength} tokens ({nameof(SampleSourceOptions.MaxSequenceLength)} or the student's max_position_embeddings).", nameof(options));
        }

        return new GenerationSettings(eos, pad, maxNew, maxLength, options);
    }
}

/// <summary>
/// The part every generating source shares: prompts out of the batch, the context-window check, generation on the rows that
/// fit, the truncated / empty policies, statistics, and the new right-padded batch.
/// </summary>
internal static class ResponseGeneration
{
    /// <summary>Generates responses for <paramref name="batch"/>'s prompts with <paramref name="generate"/> and returns the new batch.</summary>
    /// <param name="batch">The source batch.</param>
    /// <param name="context">The batch's context.</param>
    /// <param name="settings">Resolved settings.</param>
    /// <param name="counters">Statistics to update.</param>
    /// <param name="name">The source's name (messages).</param>
    /// <param name="device">The generating model's device.</param>
    /// <param name="generate">Generates for left-padded prompts [b, P] and mask: ids [b, N], lengths (EOS included), stopped-on-EOS flags.</param>
    /// <returns>The batch of prompts and responses.</returns>
    public static DistillationBatch Run(
        DistillationBatch batch,
        BatchTransformContext context,
        GenerationSettings settings,
        SampleSourceCounters counters,
        string name,
        Device device,
        Func<Tensor, Tensor, (Tensor Ids, long[] Lengths, bool[] Stopped)> generate)
    {
        context.CancellationToken.ThrowIfCancellationRequested();
        var what = $"Sample source '{name}', micro-batch {context.Index} of epoch {context.Epoch}";
        var clock = Stopwatch.StartNew();
        var prompts = ResponseLayout.ExtractPrompts(batch, settings.PadTokenId, device, what);
        var rows = prompts.Lengths.Length;
        var limit = settings.MaxSequenceLength - settings.MaxNewTokens;
        var fits = new List<long>(rows);
        var skipped = new bool[rows];
        for (var b = 0; b < rows; b++)
        {
            if (prompts.Lengths[b] <= limit)
            {
                fits.Add(b);
                continue;
            }

            if (settings.Options.LongPrompts == LongPromptPolicy.Throw)
            {
                throw new InvalidOperationException(
                    $"{what}, row {b}{ExampleId(batch, b)}: the prompt has {prompts.Lengths[b]} tokens; with {settings.MaxNewTokens} new tokens it exceeds the context window of {settings.MaxSequenceLength} (SampleSourceOptions.MaxSequenceLength or max_position_embeddings). Shorten the prompts, lower MaxNewTokens, or set LongPrompts = Skip.");
            }

            skipped[b] = true;
        }

        var lengths = new long[rows];
        var stopped = new bool[rows];
        Tensor generated;
        if (fits.Count == 0)
        {
            generated = TorchScalars.Full(rows, 1, settings.PadTokenId, ScalarType.Int64, device);
        }
        else if (fits.Count == rows)
        {
            (generated, var l, var s) = generate(prompts.InputIds, prompts.AttentionMask);
            Array.Copy(l, lengths, rows);
            Array.Copy(s, stopped, rows);
        }
        else
        {
            var index = tensor(fits.ToArray(), ScalarType.Int64, device: device);
            var (subset, l, s) = generate(prompts.InputIds.index_select(0, index), prompts.AttentionMask.index_select(0, index));
            generated = TorchScalars.Full(rows, Math.Max(subset.shape[1], 1), settings.PadTokenId, ScalarType.Int64, device).index_copy_(0, index, subset);
            for (var i = 0; i < fits.Count; i++)
            {
                lengths[fits[i]] = l[i];
                stopped[fits[i]] = s[i];
            }
        }

        var firstTokens = generated.shape[1] > 0 ? generated.select(1, 0).cpu().data<long>().ToArray() : new long[rows];
        var score = new bool[rows];
        long truncated = 0, empty = 0, dropped = 0, tokens = 0;
        for (var b = 0; b < rows; b++)
        {
            if (skipped[b])
            {
                continue;
            }

            tokens += lengths[b];
            score[b] = true;
            if (!stopped[b])
            {
                truncated++;
                if (settings.Options.TruncatedGenerations == TruncatedGenerationPolicy.Drop)
                {
                    score[b] = false;
                }
            }
            else if (lengths[b] == 1 && settings.EosTokenIds.Contains(firstTokens[b]))
            {
                empty++;
                switch (settings.Options.EmptyResponses)
                {
                    case EmptyResponsePolicy.Throw:
                        throw new InvalidOperationException($"{what}, row {b}{ExampleId(batch, b)}: the generated response is empty (the first token is EOS {firstTokens[b]}). Set SampleSourceOptions.EmptyResponses = Keep or Drop to train on or skip such rows.");
                    case EmptyResponsePolicy.Drop:
                        score[b] = false;
                        break;
                }
            }

            if (!score[b])
            {
                dropped++;
            }
        }

        var result = ResponseLayout.Build(prompts, generated, lengths, score, settings.PadTokenId, batch.ExampleIds);
        counters.CountGeneration(new ResponseCounts(fits.Count, truncated, empty, dropped, rows - fits.Count, tokens), clock.Elapsed);
        return result;
    }

    private static string ExampleId(DistillationBatch batch, int row) =>
        batch.ExampleIds is { } ids && row < ids.Count ? $" (example {ids[row]})" : string.Empty;
}
