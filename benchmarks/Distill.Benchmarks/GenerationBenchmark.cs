using System.Text.Json.Nodes;
using Distill.Generation;
using Distill.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Distill.Benchmarks;

/// <summary>
/// bench.py's <c>gen</c> section: greedy generation with the GPT-2-small-shaped model (seed + 1, eval, fp32), batch 1,
/// 32 random prompt ids, 64 new tokens, with and without KV cache, through <see cref="TextGenerator"/>.
/// </summary>
internal static class GenerationBenchmark
{
    internal static JsonObject Run(ModelBenchOptions o, JsonObject summary)
    {
        using var model = ForwardBenchmarkHarness.Gpt2Small(o.Layers, o.Seed + 1);
        using var g = new Generator((ulong)o.Seed);
        using var prompt = torch.randint(0, 50257, [1, o.Prompt], generator: g, dtype: ScalarType.Int64);
        using var mask = torch.ones_like(prompt);
        var key = $"gen/gpt2_L{o.Layers}_p{o.Prompt}_n{o.NewTokens}";
        var detail = new JsonObject();
        long[]? reference = null;
        var match = true;
        foreach (var (mode, useCache) in new[] { ("kv_cache", true), ("no_cache", false) })
        {
            Console.Error.WriteLine($"[bench] {key}/{mode}");
            long[]? tokens = null;
            var times = ForwardBenchmarkHarness.Time(o, () =>
            {
                using var r = TextGenerator.Generate(model, prompt, mask, new GenerationOptions { MaxNewTokens = o.NewTokens, UseCache = useCache });
                tokens = r.GeneratedIds.data<long>().ToArray();
            });
            reference ??= tokens;
            match &= reference!.SequenceEqual(tokens!);
            var median = ForwardBenchmarkHarness.Median(times);
            summary[$"{key}/{mode}/time_s"] = median;
            summary[$"{key}/{mode}/tokens_per_s"] = o.NewTokens / median;
            var stats = ForwardBenchmarkHarness.Stats(times);
            if (useCache)
            {
                // Prefill alone: one cached forward over the prompt (logits for all positions), as bench.py times it.
                var prefill = ForwardBenchmarkHarness.Time(o, () =>
                {
                    using var scope = torch.NewDisposeScope();
                    using var noGrad = torch.no_grad();
                    using var cache = ((CausalLM)model).CreateCache();
                    model.Forward(new CausalLMInput { InputIds = prompt, Cache = cache });
                });
                var prefillMedian = ForwardBenchmarkHarness.Median(prefill);
                summary[$"{key}/{mode}/prefill_time_s"] = prefillMedian;
                summary[$"{key}/{mode}/decode_time_ms_per_token"] = (median - prefillMedian) / (o.NewTokens - 1) * 1000;
                stats["prefill_median_s"] = prefillMedian;
            }

            detail[mode] = stats;
        }

        detail["tokens_match"] = match;
        return detail;
    }
}
