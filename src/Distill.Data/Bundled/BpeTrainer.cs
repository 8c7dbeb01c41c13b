using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Distill.Data;

/// <summary>
/// A small byte-level BPE trainer and tokenizer.json writer (the format Hugging Face <c>tokenizers</c> loads): GPT-2
/// pre-tokenisation, 256 byte symbols, then repeatedly merge the most frequent adjacent pair.
/// </summary>
/// <remarks>
/// Ties between equally frequent pairs go to the ordinally smallest (left, right) strings, so training is deterministic.
/// Training stops at <c>vocabSize</c> (special tokens included) or when no pair occurs at least twice.
/// </remarks>
internal static class BpeTrainer
{
    /// <summary>Trains merges on <paramref name="texts"/>; returns the vocabulary (bytes first, then merged tokens in merge order) and the merges.</summary>
    public static (List<string> Tokens, List<(string Left, string Right)> Merges) Train(IEnumerable<string> texts, int vocabSize, int specialCount)
    {
        var pre = new PreTokenizerPipeline([new SplitStage(TokenizerRegex.Create(PreTokenizerPipeline.Gpt2Pattern), SplitBehavior.Isolated)]);
        var counts = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var text in texts)
        {
            foreach (var (offset, length) in pre.Split(text))
            {
                var word = ByteLevelAlphabet.EncodeText(text.AsSpan(offset, length));
                counts[word] = counts.GetValueOrDefault(word) + 1;
            }
        }

        var words = counts.OrderBy(kv => kv.Key, StringComparer.Ordinal)
            .Select(kv => (Symbols: kv.Key.Select(c => c.ToString()).ToList(), Count: kv.Value))
            .ToList();
        var tokens = Enumerable.Range(0, 256).Select(b => ByteLevelAlphabet.Encode((byte)b).ToString()).ToList();
        var merges = new List<(string Left, string Right)>();
        while (tokens.Count + specialCount < vocabSize)
        {
            var pairs = new Dictionary<(string, string), int>();
            foreach (var (symbols, count) in words)
            {
                for (var i = 0; i + 1 < symbols.Count; i++)
                {
                    var pair = (symbols[i], symbols[i + 1]);
                    pairs[pair] = pairs.GetValueOrDefault(pair) + count;
                }
            }

            if (pairs.Count == 0)
            {
                break;
            }

            var best = pairs
                .OrderByDescending(kv => kv.Value)
                .ThenBy(kv => kv.Key.Item1, StringComparer.Ordinal)
                .ThenBy(kv => kv.Key.Item2, StringComparer.Ordinal)
                .First();
            if (best.Value < 2)
            {
                break;
            }

            var (left, right) = best.Key;
            var merged = left + right;
            merges.Add((left, right));
            tokens.Add(merged);
            foreach (var (symbols, _) in words)
            {
                for (var i = 0; i + 1 < symbols.Count; i++)
                {
                    if (symbols[i] == left && symbols[i + 1] == right)
                    {
                        symbols[i] = merged;
                        symbols.RemoveAt(i + 1);
                    }
                }
            }
        }

        return (tokens, merges);
    }

    /// <summary>Writes a byte-level BPE tokenizer.json (GPT-2 layout) with the special tokens appended after the vocabulary.</summary>
    public static string ToTokenizerJson(IReadOnlyList<string> tokens, IReadOnlyList<(string Left, string Right)> merges, IReadOnlyList<string> specials)
    {
        var vocab = new JsonObject();
        for (var i = 0; i < tokens.Count; i++)
        {
            vocab[tokens[i]] = i;
        }

        var added = new JsonArray();
        for (var s = 0; s < specials.Count; s++)
        {
            var id = tokens.Count + s;
            vocab[specials[s]] = id;
            added.Add(new JsonObject
            {
                ["id"] = id,
                ["content"] = specials[s],
                ["single_word"] = false,
                ["lstrip"] = false,
                ["rstrip"] = false,
                ["normalized"] = false,
                ["special"] = true,
            });
        }

        JsonObject ByteLevel() => new() { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = true, ["use_regex"] = true };
        var root = new JsonObject
        {
            ["version"] = "1.0",
            ["truncation"] = null,
            ["padding"] = null,
            ["added_tokens"] = added,
            ["normalizer"] = null,
            ["pre_tokenizer"] = ByteLevel(),
            ["post_processor"] = ByteLevel(),
            ["decoder"] = ByteLevel(),
            ["model"] = new JsonObject
            {
                ["type"] = "BPE",
                ["dropout"] = null,
                ["unk_token"] = null,
                ["continuing_subword_prefix"] = null,
                ["end_of_word_suffix"] = null,
                ["fuse_unk"] = false,
                ["byte_fallback"] = false,
                ["ignore_merges"] = false,
                ["vocab"] = vocab,
                ["merges"] = new JsonArray([.. merges.Select(m => (JsonNode)new JsonArray(m.Left, m.Right))]),
            },
        };
        return root.ToJsonString(new JsonSerializerOptions { WriteIndented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }) + "\n";
    }
}
