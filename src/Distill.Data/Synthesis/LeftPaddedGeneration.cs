using Distill.Generation;
using static TorchSharp.torch;

namespace Distill.Data.Synthesis;

/// <summary>One generated row: its tokens (the stop token included, padding excluded) and whether it stopped before the token limit.</summary>
/// <param name="Tokens">The generated ids.</param>
/// <param name="Stopped">Whether the row stopped on EOS (false: it ran to MaxNewTokens).</param>
internal sealed record GeneratedRow(int[] Tokens, bool Stopped);

/// <summary>
/// The generation step shared by the synthesizers (SDFT rewrites, SeqKD teacher answers): prompts of different lengths
/// are left-padded into one batch and decoded together by <see cref="TextGenerator"/> (key/value cache, no per-row loop).
/// </summary>
internal static class LeftPaddedGeneration
{
    /// <summary>Generates one continuation per prompt.</summary>
    /// <param name="model">The model, on its device.</param>
    /// <param name="prompts">Prompt ids (each at least one id).</param>
    /// <param name="pad">The id written in the left padding (masked out).</param>
    /// <param name="options">Decoding options (seed, EOS and pad ids included).</param>
    /// <returns>The generated rows, in prompt order.</returns>
    internal static List<GeneratedRow> Generate(ICausalLM model, IReadOnlyList<IReadOnlyList<int>> prompts, long pad, GenerationOptions options)
    {
        var count = prompts.Count;
        var width = prompts.Max(r => r.Count);
        var ids = new long[count * width];
        var mask = new long[count * width];
        for (var r = 0; r < count; r++)
        {
            var offset = width - prompts[r].Count;
            for (var t = 0; t < width; t++)
            {
                ids[(r * width) + t] = t < offset ? pad : prompts[r][t - offset];
                mask[(r * width) + t] = t < offset ? 0 : 1;
            }
        }

        using var scope = NewDisposeScope();
        var device = model.EmbeddingWeight.device;
        using var result = TextGenerator.Generate(model, tensor(ids, [count, width]).to(device), tensor(mask, [count, width]).to(device), options);
        var generated = result.GeneratedIds.cpu();
        var rows = new List<GeneratedRow>(count);
        for (var r = 0; r < count; r++)
        {
            var length = (int)result.Lengths[r];
            int[] tokens = length == 0 ? [] : [.. generated[r, ..length].data<long>().Select(i => (int)i)];
            rows.Add(new GeneratedRow(tokens, result.Stopped[r]));
        }

        return rows;
    }
}
