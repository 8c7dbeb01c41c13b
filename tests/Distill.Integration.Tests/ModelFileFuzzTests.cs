using System.Buffers.Binary;
using System.Text;
using System.Text.Json.Nodes;
using Distill.Data;
using Distill.IO;
using Distill.Lora;
using Distill.Models;
using Distill.Tests.Shared;
using static TorchSharp.torch;

namespace Distill.Integration.Tests;

/// <summary>
/// A seeded mutation corpus over tiny model folders (single and sharded safetensors, config.json, the shard index),
/// tokenizer.json and adapter_config.json: truncations at many offsets, byte flips in the header, header lengths ±k, bad
/// offsets, dtypes and shapes, and JSON mutations of every key. Every mutation must give a clear exception (one of the
/// documented types of the loaders, its message naming the mutated file) or load something identical to the original (same weights and logits, same
/// token ids, same adapted logits). Anything else (a silent change, an unexpected exception type, a message without the
/// file) is a failure.
/// </summary>
public sealed class ModelFileFuzzTests
{
    private const int Seed = 20261206;
    private static readonly long[] ProbeIds = [1, 5, 9, 3, 7, 2];
    private static readonly string[] ProbeTexts = ["Hello, world!", "  spaces\tand\nlines 12345", "ünïcödé ✓ 漢字"];

    [Fact]
    public void Mutations_GiveClearErrorsOrIdenticalResults()
    {
        using var tmp = new TempFolder();
        var random = new Random(Seed);
        var outcomes = new List<string>();
        var failures = new List<string>();
        var count = 0;

        void Check(string what, string file, Func<bool> load)
        {
            count++;
            try
            {
                if (!load())
                {
                    failures.Add($"{what}: loaded silently with a different result");
                }
            }
            catch (Exception e) when (e is InvalidDataException or FileNotFoundException or DirectoryNotFoundException or NotSupportedException or ArgumentException or InvalidOperationException)
            {
                if (!e.Message.Contains(Path.GetFileName(file), StringComparison.Ordinal))
                {
                    failures.Add($"{what}: {e.GetType().Name} does not name '{Path.GetFileName(file)}': {InputFile.Bound(e.Message, 300)}");
                }
            }
            catch (Exception e)
            {
                failures.Add($"{what}: unclear {e.GetType().Name}: {InputFile.Bound(e.Message, 300)}");
            }
        }

        foreach (var (arch, shard) in new[] { ("gpt2", (long?)null), ("llama", 3000L) })
        {
            var source = Path.Combine(tmp.Path, arch + "-src");
            using (var m = Create(arch))
            {
                m.SavePretrained(source, shard);
            }

            var reference = Logits(source);
            Dictionary<string, Tensor> referenceState;
            using (var r = AutoCausalLM.FromPretrained(source))
            {
                referenceState = r.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());
            }

            // Weight-file mutations must load the very same model; a config or index mutation may describe a different but
            // valid model (another eps or rope_theta within the limits), so there every weight must still be the checkpoint's.
            bool SameWeights(string dir)
            {
                using var loaded = AutoCausalLM.FromPretrained(dir, rejectNonFiniteWeights: true);
                var state = loaded.state_dict();
                return state.Count == referenceState.Count && referenceState.All(kv => state.TryGetValue(kv.Key, out var t) && t.shape.SequenceEqual(kv.Value.shape) && t.eq(kv.Value).all().item<bool>());
            }

            bool Same(string dir)
            {
                using var scope = NewDisposeScope();
                if (!SameWeights(dir))
                {
                    return false;
                }

                using var loaded = AutoCausalLM.FromPretrained(dir, rejectNonFiniteWeights: true);
                var logits = loaded.Forward(new CausalLMInput { InputIds = tensor(ProbeIds).unsqueeze(0) }).Logits!;
                return logits.shape.SequenceEqual(reference.shape) && logits.eq(reference).all().item<bool>();
            }

            var weightFiles = Directory.GetFiles(source, "*.safetensors").Order(StringComparer.Ordinal).ToArray();
            foreach (var weights in weightFiles)
            {
                var original = File.ReadAllBytes(weights);
                var headerLength = (int)BinaryPrimitives.ReadUInt64LittleEndian(original);
                foreach (var (name, bytes) in SafetensorsMutations(original, headerLength, random))
                {
                    var dir = Copy(source, tmp.Path, ref count);
                    File.WriteAllBytes(Path.Combine(dir, Path.GetFileName(weights)), bytes);
                    Check($"{arch} {Path.GetFileName(weights)} {name}", weights, () => Same(dir));
                    Directory.Delete(dir, recursive: true);
                }
            }

            foreach (var json in new[] { "config.json", SafeTensors.IndexFileName })
            {
                var path = Path.Combine(source, json);
                if (!File.Exists(path))
                {
                    continue;
                }

                foreach (var (name, text) in JsonMutations(File.ReadAllText(path), random))
                {
                    var dir = Copy(source, tmp.Path, ref count);
                    File.WriteAllText(Path.Combine(dir, json), text);
                    Check($"{arch} {json} {name}", path, () => SameWeights(dir));
                    Directory.Delete(dir, recursive: true);
                }
            }

            outcomes.Add($"{arch}: {count} mutations so far");
        }

        // tokenizer.json
        var tokSource = Path.Combine(tmp.Path, "tok-src");
        BundledData.WriteTokenizer(BundledTokenizer.Bpe, tokSource);
        var tokReference = ProbeTexts.Select(t => BundledData.TokenizerB().EncodeToIds(t, addSpecialTokens: true).ToArray()).ToList();
        var tokPath = Path.Combine(tokSource, "tokenizer.json");
        var tokText = File.ReadAllText(tokPath);
        var tokMutations = JsonMutations(tokText, random).Concat(Truncations(Encoding.UTF8.GetBytes(tokText), random, 12).Select(t => (t.Name, Encoding.UTF8.GetString(t.Bytes))));
        foreach (var (name, text) in tokMutations)
        {
            var dir = Copy(tokSource, tmp.Path, ref count);
            File.WriteAllText(Path.Combine(dir, "tokenizer.json"), text);
            Check($"tokenizer.json {name}", tokPath, () =>
            {
                var tokenizer = HfTokenizer.FromPretrained(dir);
                return ProbeTexts.Select(t => tokenizer.EncodeToIds(t, addSpecialTokens: true).ToArray()).Zip(tokReference).All(p => p.First.SequenceEqual(p.Second));
            });
            Directory.Delete(dir, recursive: true);
        }

        // adapter_config.json
        var baseDir = Path.Combine(tmp.Path, "llama-src");
        var adapterSource = Path.Combine(tmp.Path, "adapter-src");
        Dictionary<string, Tensor> adapterState;
        using (var m = AutoCausalLM.FromPretrained(baseDir))
        {
            var lora = LoraModel.Inject(m, new LoraConfig { R = 2, LoraAlpha = 4, TargetModules = ["q_proj", "v_proj"] });
            using (no_grad())
            {
                foreach (var (_, p) in lora.TrainableParameters())
                {
                    p.normal_(0, 0.5);
                }
            }

            lora.SaveAdapter(adapterSource);
            adapterState = m.state_dict().Where(kv => kv.Key.Contains("lora_", StringComparison.Ordinal)).ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());
        }

        var adapterPath = Path.Combine(adapterSource, LoraConfig.FileName);
        foreach (var (name, text) in JsonMutations(File.ReadAllText(adapterPath), random))
        {
            var dir = Copy(adapterSource, tmp.Path, ref count);
            File.WriteAllText(Path.Combine(dir, LoraConfig.FileName), text);
            Check($"adapter_config.json {name}", adapterPath, () =>
            {
                // Another valid alpha, dropout or rsLoRA flag is a different adapter configuration; the adapter weights must
                // still be exactly the saved ones, on exactly the same modules.
                using var scope = NewDisposeScope();
                using var m = AutoCausalLM.FromPretrained(baseDir);
                LoraModel.LoadAdapter(m, dir);
                var state = m.state_dict().Where(kv => kv.Key.Contains("lora_", StringComparison.Ordinal)).ToDictionary(kv => kv.Key, kv => kv.Value);
                return state.Count == adapterState.Count && adapterState.All(kv => state.TryGetValue(kv.Key, out var t) && t.shape.SequenceEqual(kv.Value.shape) && t.eq(kv.Value).all().item<bool>());
            });
            Directory.Delete(dir, recursive: true);
        }

        Assert.True(count > 300, $"only {count} mutations");
        Assert.True(failures.Count == 0, $"{failures.Count} of {count} mutations were unclear or silent:\n" + string.Join("\n", failures.Take(40)));
    }

    private static CausalLM Create(string arch)
    {
        CausalLMConfig config = arch == "gpt2"
            ? new Gpt2Config { ModelType = "gpt2", VocabSize = 16, HiddenSize = 8, NumHiddenLayers = 1, NumAttentionHeads = 2, MaxPositionEmbeddings = 16, EosTokenIds = [15], InitializerRange = 0.5 }
            : new LlamaConfig { ModelType = "llama", VocabSize = 16, HiddenSize = 8, NumHiddenLayers = 2, NumAttentionHeads = 2, NumKeyValueHeads = 1, MaxPositionEmbeddings = 16, IntermediateSize = 12, InitializerRange = 0.5 };
        return AutoCausalLM.FromConfig(config, seed: 5);
    }

    private static Tensor Logits(string dir)
    {
        using var m = AutoCausalLM.FromPretrained(dir);
        return m.Forward(new CausalLMInput { InputIds = tensor(ProbeIds).unsqueeze(0) }).Logits!.detach().clone();
    }

    private static string Copy(string source, string root, ref int n)
    {
        var dir = Path.Combine(root, "m" + n.ToString(System.Globalization.CultureInfo.InvariantCulture) + "-" + Guid.NewGuid().ToString("N")[..6]);
        Directory.CreateDirectory(dir);
        foreach (var f in Directory.GetFiles(source))
        {
            File.Copy(f, Path.Combine(dir, Path.GetFileName(f)));
        }

        return dir;
    }

    private static IEnumerable<(string Name, byte[] Bytes)> Truncations(byte[] original, Random random, int count)
    {
        var offsets = new SortedSet<int> { 0, 1, 7, 8, 9, original.Length - 1 };
        while (offsets.Count < count)
        {
            offsets.Add(random.Next(original.Length));
        }

        return offsets.Where(o => o >= 0 && o < original.Length).Select(o => ($"truncated at {o}", original[..o]));
    }

    private static IEnumerable<(string Name, byte[] Bytes)> SafetensorsMutations(byte[] original, int headerLength, Random random)
    {
        foreach (var t in Truncations(original, random, 16))
        {
            yield return t;
        }

        // Header length ±k.
        foreach (var k in new[] { -8, -7, -5, -3, -2, -1, 1, 2, 3, 5, 8, 1 << 20 })
        {
            var b = (byte[])original.Clone();
            BinaryPrimitives.WriteUInt64LittleEndian(b, (ulong)(headerLength + k));
            yield return ($"header length {k:+#;-#}", b);
        }

        // Byte flips inside the header.
        for (var i = 0; i < 24; i++)
        {
            var b = (byte[])original.Clone();
            var at = 8 + random.Next(headerLength);
            b[at] ^= (byte)(1 << random.Next(8));
            yield return ($"header byte {at} flipped", b);
        }

        // Structured header edits: offsets, dtypes, shapes.
        var header = JsonNode.Parse(Encoding.UTF8.GetString(original, 8, headerLength))!.AsObject();
        var data = original[(8 + headerLength)..];
        var names = header.Select(kv => kv.Key).Where(k => k != "__metadata__").ToList();
        byte[] Rebuild(JsonObject h)
        {
            var json = Encoding.UTF8.GetBytes(h.ToJsonString());
            var padded = (json.Length + 7) / 8 * 8;
            var b = new byte[8 + padded + data.Length];
            BinaryPrimitives.WriteUInt64LittleEndian(b, (ulong)padded);
            Array.Fill(b, (byte)' ', 8, padded);
            json.CopyTo(b, 8);
            data.CopyTo(b, 8 + padded);
            return b;
        }

        for (var i = 0; i < 8; i++)
        {
            var name = names[random.Next(names.Count)];
            var h = (JsonObject)header.DeepClone();
            var offsets = h[name]!["data_offsets"]!.AsArray();
            var which = random.Next(2);
            offsets[which] = offsets[which]!.GetValue<long>() + (random.Next(2) == 0 ? -4 : 4);
            yield return ($"{name} data_offsets[{which}] ±4", Rebuild(h));
        }

        foreach (var dtype in new[] { "I32", "F16", "BF16", "U8", "BOOL", "F64", "I64", "X9" })
        {
            var h = (JsonObject)header.DeepClone();
            var name = names[random.Next(names.Count)];
            h[name]!["dtype"] = dtype;
            yield return ($"{name} dtype {dtype}", Rebuild(h));
        }

        for (var i = 0; i < 4; i++)
        {
            var h = (JsonObject)header.DeepClone();
            var name = names[random.Next(names.Count)];
            var shape = h[name]!["shape"]!.AsArray();
            if (shape.Count >= 2)
            {
                // Same element count, other shape: the checkpoint no longer matches the architecture.
                h[name]!["shape"] = new JsonArray(shape[1]!.GetValue<long>(), shape[0]!.GetValue<long>());
                yield return ($"{name} shape transposed", Rebuild(h));
            }

            var h2 = (JsonObject)header.DeepClone();
            h2[name]!["shape"] = new JsonArray(-1);
            yield return ($"{name} shape [-1]", Rebuild(h2));
        }

        var renamed = (JsonObject)header.DeepClone();
        var victim = names[random.Next(names.Count)];
        var entry = renamed[victim]!.DeepClone();
        renamed.Remove(victim);
        renamed[victim + ".x"] = entry;
        yield return ($"{victim} renamed", Rebuild(renamed));
    }

    private static IEnumerable<(string Name, string Text)> JsonMutations(string text, Random random)
    {
        var root = JsonNode.Parse(text)!.AsObject();
        JsonNode?[] replacements = [null, -1, 0, 1e9, 1e300, 0.5, "x", true, new JsonArray(), new JsonObject(), new JsonArray(1, "a")];
        foreach (var key in root.Select(kv => kv.Key).ToList())
        {
            var removed = (JsonObject)root.DeepClone();
            removed.Remove(key);
            yield return ($"'{key}' removed", removed.ToJsonString());
            foreach (var r in replacements.OrderBy(_ => random.Next()).Take(3))
            {
                var o = (JsonObject)root.DeepClone();
                o[key] = r?.DeepClone();
                yield return ($"'{key}' = {r?.ToJsonString() ?? "null"}", o.ToJsonString());
            }

            if (root[key] is JsonObject inner && inner.Count > 0)
            {
                // One level down (weight_map entries, rope parameters, model.vocab ...): a random key gets a bad value.
                foreach (var innerKey in inner.Select(kv => kv.Key).OrderBy(_ => random.Next()).Take(3).ToList())
                {
                    foreach (var r in replacements.OrderBy(_ => random.Next()).Take(2))
                    {
                        var o = (JsonObject)root.DeepClone();
                        o[key]![innerKey] = r?.DeepClone();
                        yield return ($"'{key}.{innerKey}' = {r?.ToJsonString() ?? "null"}", o.ToJsonString());
                    }
                }
            }
        }

        // A repeated key, and the text cut short.
        var first = root.First().Key;
        yield return ($"'{first}' repeated", "{\"" + first + "\": 1, " + text.TrimStart()[1..]);
        yield return ("cut in half", text[..(text.Length / 2)]);
        yield return ("not an object", "[" + text + "]");
        yield return ("empty", string.Empty);
    }
}
