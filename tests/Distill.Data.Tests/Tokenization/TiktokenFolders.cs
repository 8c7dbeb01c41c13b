using System.IO.Compression;
using System.Reflection;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Distill.Data.Tests.Tokenization;

/// <summary>
/// Builds Hugging Face tokenizer folders from the tiktoken rank files shipped in Microsoft.ML.Tokenizers.Data.*:
/// vocab = byte-level string of each token's bytes → rank; merges = for every token, each split into two parts that are
/// both tokens, ordered by the merged token's rank, then by the parts' ranks (the construction transformers uses to
/// convert tiktoken files). The folders are cached per process.
/// </summary>
internal static class TiktokenFolders
{
    public const string Gpt2Pattern = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

    // tiktoken's cl100k_base and o200k_base split patterns (openai_public.py), in the form HF tokenizer.json files carry.
    public const string Cl100kPattern = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    public const string O200kPattern = @"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    private static readonly Lazy<string> Gpt2Dir = new(() => Build("gpt2", "Gpt2", "gpt2.tiktoken.deflate", null, new() { ["<|endoftext|>"] = 50256 }, "<|endoftext|>"));
    private static readonly Lazy<string> Cl100kDir = new(() => Build("cl100k", "Cl100kBase", "cl100k_base.tiktoken.deflate", Cl100kPattern, new() { ["<|endoftext|>"] = 100257, ["<|fim_prefix|>"] = 100258, ["<|fim_middle|>"] = 100259, ["<|fim_suffix|>"] = 100260, ["<|endofprompt|>"] = 100276 }, "<|endoftext|>"));
    private static readonly Lazy<string> O200kDir = new(() => Build("o200k", "O200kBase", "o200k_base.tiktoken.deflate", O200kPattern, new() { ["<|endoftext|>"] = 199999, ["<|endofprompt|>"] = 200018 }, "<|endoftext|>"));

    public static string Gpt2 => Gpt2Dir.Value;

    public static string Cl100k => Cl100kDir.Value;

    public static string O200k => O200kDir.Value;

    public static HfTokenizer LoadGpt2() => HfTokenizer.FromPretrained(Gpt2);

    public static HfTokenizer LoadCl100k() => HfTokenizer.FromPretrained(Cl100k);

    public static HfTokenizer LoadO200k() => HfTokenizer.FromPretrained(O200k);

    /// <summary>Reads a tiktoken rank file: one base64 token per line after a "Capacity: N" header, rank = line index.</summary>
    public static List<byte[]> ReadRanks(string assemblySuffix, string resource)
    {
        var assembly = Assembly.Load("Microsoft.ML.Tokenizers.Data." + assemblySuffix);
        using var deflate = new DeflateStream(assembly.GetManifestResourceStream(resource)!, CompressionMode.Decompress);
        using var reader = new StreamReader(deflate);
        var header = reader.ReadLine()!;
        Assert.StartsWith("Capacity:", header, StringComparison.Ordinal);
        var ranks = new List<byte[]>();
        while (reader.ReadLine() is { } line)
        {
            var space = line.IndexOf(' ', StringComparison.Ordinal);
            ranks.Add(Convert.FromBase64String(space < 0 ? line : line[..space]));
        }

        return ranks;
    }

    private static string Build(string name, string assemblySuffix, string resource, string? splitPattern, Dictionary<string, int> specials, string eos)
    {
        var ranks = ReadRanks(assemblySuffix, resource);
        var rankOf = new Dictionary<string, int>(StringComparer.Ordinal);
        var strings = new string[ranks.Count];
        for (var i = 0; i < ranks.Count; i++)
        {
            strings[i] = ByteLevelAlphabet.Encode(ranks[i]);
            rankOf[strings[i]] = i;
        }

        var merges = new List<(int Rank, int Left, int Right, string Text)>();
        for (var i = 0; i < strings.Length; i++)
        {
            var token = strings[i];
            for (var split = 1; split < token.Length; split++)
            {
                if (rankOf.TryGetValue(token[..split], out var left) && rankOf.TryGetValue(token[split..], out var right))
                {
                    merges.Add((i, left, right, token[..split] + " " + token[split..]));
                }
            }
        }

        merges.Sort((a, b) => (a.Rank, a.Left, a.Right).CompareTo((b.Rank, b.Left, b.Right)));
        var vocab = new JsonObject();
        for (var i = 0; i < strings.Length; i++)
        {
            vocab[strings[i]] = i;
        }

        var added = new JsonArray();
        foreach (var (content, id) in specials)
        {
            vocab[content] = id;
            added.Add(new JsonObject { ["id"] = id, ["content"] = content, ["single_word"] = false, ["lstrip"] = false, ["rstrip"] = false, ["normalized"] = false, ["special"] = true });
        }

        JsonNode preTokenizer = splitPattern is null
            ? new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = true, ["use_regex"] = true }
            : new JsonObject
            {
                ["type"] = "Sequence",
                ["pretokenizers"] = new JsonArray(
                    new JsonObject { ["type"] = "Split", ["pattern"] = new JsonObject { ["Regex"] = splitPattern }, ["behavior"] = "Isolated", ["invert"] = false },
                    new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = true, ["use_regex"] = false }),
            };
        var json = new JsonObject
        {
            ["version"] = "1.0",
            ["added_tokens"] = added,
            ["normalizer"] = null,
            ["pre_tokenizer"] = preTokenizer,
            ["post_processor"] = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = true, ["use_regex"] = true },
            ["decoder"] = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = true, ["use_regex"] = true },
            ["model"] = new JsonObject
            {
                ["type"] = "BPE",
                ["dropout"] = null,
                ["unk_token"] = null,
                ["continuing_subword_prefix"] = null,
                ["end_of_word_suffix"] = null,
                ["fuse_unk"] = false,
                ["byte_fallback"] = false,
                ["ignore_merges"] = splitPattern is not null,
                ["vocab"] = vocab,
                ["merges"] = new JsonArray([.. merges.Select(m => (JsonNode)JsonValue.Create(m.Text)!)]),
            },
        };
        // One folder per process, removed when the test host exits (the files are 2-8 MB each).
        var dir = Path.Combine(Path.GetTempPath(), "distill-tests", "tiktoken-" + name + "-" + Environment.ProcessId);
        Directory.CreateDirectory(dir);
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            try
            {
                Directory.Delete(dir, recursive: true);
            }
            catch (IOException)
            {
                // Best effort.
            }
        };
        File.WriteAllText(Path.Combine(dir, "tokenizer.json"), json.ToJsonString());
        File.WriteAllText(Path.Combine(dir, "tokenizer_config.json"), JsonSerializer.Serialize(new { bos_token = eos, eos_token = eos, unk_token = eos, add_bos_token = false, model_max_length = 1024 }));
        return dir;
    }
}
