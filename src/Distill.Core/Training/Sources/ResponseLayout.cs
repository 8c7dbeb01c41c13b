using static TorchSharp.torch;

namespace Distill.Training.Sources;

/// <summary>
/// Turns a training batch into left-padded prompts for generation, and prompts plus generated responses back into a
/// right-padded training batch. Both directions are batched tensor operations (no per-row loop).
/// </summary>
internal static class ResponseLayout
{
    /// <summary>
    /// Extracts each row's prompt: its real tokens (attention mask 1) before the first scored label — with labels aligned to
    /// logits, <c>labels[t]</c> is the target of position <c>t</c>, so the prompt is positions <c>0..t</c> — or every real token
    /// of a row with no scored label (a prompt-only row). Works for left- and right-padded batches.
    /// </summary>
    /// <param name="batch">The batch.</param>
    /// <param name="pad">The id written into the left padding.</param>
    /// <param name="device">Where the prompts go (the generating model's device).</param>
    /// <param name="what">Names the batch in messages.</param>
    /// <returns>Left-padded prompts [B, P], their mask [B, P] and each row's prompt length.</returns>
    public static Prompts ExtractPrompts(DistillationBatch batch, long pad, Device device, string what)
    {
        if (batch.HasTeacherTokens)
        {
            throw new InvalidOperationException($"{what} has the teacher's own tokenisation (a cross-tokenizer batch); sample sources generate in the student's vocabulary and need a same-tokenizer batch.");
        }

        using var scope = NewDisposeScope();
        var ids = batch.InputIds.to(device).to_type(ScalarType.Int64);
        var (rows, width) = (ids.shape[0], ids.shape[1]);
        var real = batch.AttentionMask.to(device).ne(TorchScalars.Constant(0));
        var scored = batch.Labels.to(device).ne(TorchScalars.Constant(DistillationBatch.IgnoreIndex)).logical_and(real);
        var columns = TorchScalars.Arange(width, dtype: ScalarType.Int64, device: device).unsqueeze(0); // [1, T]
        var first = where(scored, columns, tensor(width, ScalarType.Int64, device)).min(dim: 1).values; // [B]; T when nothing is scored
        var end = where(first.Lt(width), first.Add(1), tensor(width, ScalarType.Int64, device)); // exclusive end of the prompt
        var isPrompt = real.logical_and(columns.lt(end.unsqueeze(1))); // [B, T]
        var lengthsTensor = isPrompt.sum(dim: 1L, type: ScalarType.Int64);
        var lengths = lengthsTensor.cpu().data<long>().ToArray();
        for (var b = 0; b < lengths.Length; b++)
        {
            if (lengths[b] == 0)
            {
                throw new InvalidOperationException($"{what}, row {b}: the prompt is empty (no real token before the first scored label); generation needs at least one prompt token.");
            }
        }

        var longest = lengths.Max();
        // Column of each prompt token in the left-padded layout: P − p + rank; other positions go to a spare column P.
        var rank = isPrompt.to_type(ScalarType.Int64).cumsum(1).Sub(1);
        var target = where(isPrompt, lengthsTensor.RSub(longest).unsqueeze(1).Add(rank), tensor(longest, ScalarType.Int64, device));
        var prompt = TorchScalars.Full(rows, longest + 1, pad, ScalarType.Int64, device).scatter_(1, target, ids).narrow(1, 0, longest);
        var mask = TorchScalars.Arange(longest, dtype: ScalarType.Int64, device: device).unsqueeze(0).ge(lengthsTensor.RSub(longest).unsqueeze(1)).to_type(ScalarType.Int64);
        return new Prompts(prompt.MoveToOuterDisposeScope(), mask.MoveToOuterDisposeScope(), lengths);
    }

    /// <summary>
    /// Builds the training batch <c>prompt + response</c>, right-padded: attention mask 1 on real tokens (EOS included),
    /// position ids <c>0..</c> on real tokens and 0 on padding, labels aligned with logits that score exactly the response
    /// tokens (the last prompt position predicts the first response token; the last response token predicts nothing).
    /// </summary>
    /// <param name="prompts">Left-padded prompts from <see cref="ExtractPrompts"/>.</param>
    /// <param name="generated">[B, N] generated ids (anything after a row's length is ignored).</param>
    /// <param name="responseLengths">Per row, the number of generated tokens to keep (0 = prompt only).</param>
    /// <param name="scoreRow">Per row, whether its response is scored (false: every label ignored).</param>
    /// <param name="pad">The padding id.</param>
    /// <param name="exampleIds">The source batch's example ids, carried over.</param>
    /// <returns>The new batch (tensors in the caller's dispose scope).</returns>
    public static DistillationBatch Build(Prompts prompts, Tensor generated, long[] responseLengths, bool[] scoreRow, long pad, IReadOnlyList<long>? exampleIds)
    {
        using var scope = NewDisposeScope();
        var device = prompts.InputIds.device;
        var rows = prompts.InputIds.shape[0];
        var promptWidth = prompts.InputIds.shape[1];
        var sequence = cat([prompts.InputIds, generated.to(device).to_type(ScalarType.Int64)], 1); // [B, P + N]
        var p = tensor(prompts.Lengths, ScalarType.Int64, device: device);
        var total = p.Add(tensor(responseLengths, ScalarType.Int64, device: device)); // [B]
        var width = prompts.Lengths.Zip(responseLengths, (a, b) => a + b).Max();
        var t = TorchScalars.Arange(width, dtype: ScalarType.Int64, device: device).unsqueeze(0); // [1, W]
        var source = t.Add(p.RSub(promptWidth).unsqueeze(1)).ClampMax(sequence.shape[1] - 1); // drop each row's left padding
        var real = t.lt(total.unsqueeze(1)); // [B, W]
        var ids = sequence.gather(1, source).MaskedFill(real.logical_not(), pad);
        var next = cat([ids.narrow(1, 1, width - 1), TorchScalars.Full(rows, 1, pad, ScalarType.Int64, device)], 1);
        var scored = t.ge(p.Sub(1).unsqueeze(1)).logical_and(t.lt(total.Sub(1).unsqueeze(1)))
            .logical_and(tensor(scoreRow, device: device).unsqueeze(1));
        var labels = where(scored, next, tensor(DistillationBatch.IgnoreIndex, ScalarType.Int64, device));
        var positions = where(real, t.expand(rows, width), zeros(1, ScalarType.Int64, device));
        return new DistillationBatch
        {
            InputIds = ids.MoveToOuterDisposeScope(),
            AttentionMask = real.to_type(ScalarType.Int64).MoveToOuterDisposeScope(),
            Labels = labels.MoveToOuterDisposeScope(),
            PositionIds = positions.MoveToOuterDisposeScope(),
            ExampleIds = exampleIds,
        };
    }
}

/// <summary>Left-padded prompts for generation.</summary>
/// <param name="InputIds">[B, P] int64, left-padded.</param>
/// <param name="AttentionMask">[B, P] int64, 0 on padding.</param>
/// <param name="Lengths">Each row's prompt length.</param>
internal sealed record Prompts(Tensor InputIds, Tensor AttentionMask, long[] Lengths);
