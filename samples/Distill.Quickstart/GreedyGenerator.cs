using Distill.Data;
using Distill.Models;
using static TorchSharp.torch;

namespace Distill.Quickstart;

/// <summary>
/// Greedy decoding with a KV cache over a left-padded prompt batch (what the quickstart's evaluation needs). Sample-local:
/// replace it with the library's <c>TextGenerator</c> for sampling, top-k/top-p and stop strings.
/// </summary>
internal static class GreedyGenerator
{
    /// <summary>Generates up to <paramref name="maxNewTokens"/> tokens per row, stopping a row at <paramref name="eosId"/>.</summary>
    /// <returns>The new token ids of each row, without the EOS.</returns>
    public static List<List<int>> Generate(CausalLM model, PromptBatch prompts, int maxNewTokens, long eosId)
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var training = model.training;
        model.eval();
        try
        {
            using var cache = model.CreateCache();
            var device = model.Device;
            var rows = (int)prompts.InputIds.shape[0];
            var mask = prompts.AttentionMask.to(device);
            var positions = prompts.PositionIds.to(device)[.., ^1..] + 1; // [B, 1] position of the first new token
            var logits = model.Forward(new CausalLMInput { InputIds = prompts.InputIds.to(device), AttentionMask = mask, PositionIds = prompts.PositionIds.to(device), Cache = cache }).Logits!;
            var results = Enumerable.Range(0, rows).Select(_ => new List<int>()).ToList();
            var finished = new bool[rows];
            for (var step = 0; step < maxNewTokens; step++)
            {
                var next = logits[.., -1, ..].argmax(-1); // [B]
                var ids = next.cpu().data<long>().ToArray();
                for (var b = 0; b < rows; b++)
                {
                    if (finished[b])
                    {
                        continue;
                    }

                    if (ids[b] == eosId)
                    {
                        finished[b] = true;
                    }
                    else
                    {
                        results[b].Add((int)ids[b]);
                    }
                }

                if (finished.All(f => f) || step == maxNewTokens - 1)
                {
                    break;
                }

                mask = cat([mask, ones(rows, 1, dtype: ScalarType.Int64, device: device)], 1);
                logits = model.Forward(new CausalLMInput { InputIds = next.unsqueeze(1), AttentionMask = mask, PositionIds = positions, Cache = cache }).Logits!;
                positions = positions + 1;
            }

            return results;
        }
        finally
        {
            model.train(training);
        }
    }
}
