using System.Text.Json;
using System.Text.Json.Nodes;
using Distill.IO;

namespace Distill.Lora;

/// <summary><c>adapter_config.json</c> reading and writing.</summary>
public sealed partial class LoraConfig
{
    /// <summary>The largest <c>adapter_config.json</c> accepted (16 MiB; real ones are about 1 KB).</summary>
    public const long MaxFileBytes = 16L << 20;

    /// <summary>The largest rank accepted in a configuration (<c>r</c> and <c>rank_pattern</c> values); the target layers' shapes bound it further when adapters are created.</summary>
    public const int MaxRank = 1 << 16;

    /// <summary>The file name PEFT uses for the adapter configuration.</summary>
    public const string FileName = "adapter_config.json";

    // Keys PEFT writes that change what an adapter computes and that Distill does not implement: a truthy value is rejected.
    private static readonly string[] UnsupportedFeatureKeys =
    [
        "layer_replication", "target_parameters", "trainable_token_indices", "alora_invocation_tokens", "use_qalora",
        "use_bdlora", "arrow_config", "velora_config", "monteclora_config", "kasa_config",
    ];

    /// <summary>Reads an <c>adapter_config.json</c>.</summary>
    /// <param name="path">The file, or a folder containing <see cref="FileName"/>.</param>
    /// <returns>The configuration.</returns>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The file is not a valid LoRA configuration (the message names the file and key).</exception>
    public static LoraConfig Load(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var file = Directory.Exists(path) ? Path.Combine(path, FileName) : path;
        if (!File.Exists(file))
        {
            throw new FileNotFoundException($"LoRA adapter configuration '{file}' does not exist.", file);
        }

        return FromJson(InputFile.ReadAllText(file, MaxFileBytes), file);
    }

    /// <summary>Parses the JSON text of an <c>adapter_config.json</c>.</summary>
    /// <param name="json">The JSON text.</param>
    /// <param name="source">A name for error messages (usually the file path).</param>
    /// <returns>The configuration.</returns>
    /// <exception cref="InvalidDataException">The text is not a valid LoRA configuration.</exception>
    public static LoraConfig FromJson(string json, string source = FileName)
    {
        ArgumentNullException.ThrowIfNull(json);
        var root = InputFile.ParseJsonObject(json, source, "LoRA adapter configuration");

        var c = new LoraConfig { TaskType = null, InferenceMode = false };
        foreach (var (key, node) in root)
        {
            c.KeysRead.Add(key);
            var r = new Reader(source, key, node);
            switch (key)
            {
                case "peft_type":
                    var peftType = r.String();
                    if (peftType is not null && !string.Equals(peftType, "LORA", StringComparison.OrdinalIgnoreCase))
                    {
                        throw new InvalidDataException($"{source}: 'peft_type' is '{peftType}', not 'LORA'; only LoRA adapters are supported.");
                    }

                    break;
                case "r": c.R = r.Int(); break;
                case "lora_alpha": c.LoraAlpha = r.Double(); break;
                case "lora_dropout": c.LoraDropout = r.Double(); break;
                case "target_modules": (c.TargetModules, c.TargetModulesPattern) = r.ListOrPattern(); break;
                case "exclude_modules": (c.ExcludeModules, c.ExcludeModulesPattern) = r.ListOrPattern(); break;
                case "fan_in_fan_out": c.FanInFanOut = r.Bool(); break;
                case "bias": c.Bias = ParseBias(r.String(), source); break;
                case "use_rslora": c.UseRslora = r.Bool(); break;
                case "modules_to_save": c.ModulesToSave = r.StringList(); break;
                case "layers_to_transform": c.LayersToTransform = r.IntList(); break;
                case "layers_pattern":
                    var (list, single) = r.ListOrPattern();
                    c.LayersPattern = single is null ? list : [single];
                    break;
                case "rank_pattern":
                    foreach (var (k, v) in r.Object())
                    {
                        c.RankPattern[k] = new Reader(source, $"rank_pattern.{k}", v).Int();
                    }

                    break;
                case "alpha_pattern":
                    foreach (var (k, v) in r.Object())
                    {
                        c.AlphaPattern[k] = new Reader(source, $"alpha_pattern.{k}", v).Double();
                    }

                    break;
                case "lora_bias": c.LoraBias = r.Bool(); break;
                case "init_lora_weights":
                    if (node is JsonValue iv && iv.TryGetValue<bool>(out var b))
                    {
                        c.InitLoraWeights = b ? LoraInitialization.Default : LoraInitialization.Random;
                    }
                    else if (string.Equals(r.String(), "gaussian", StringComparison.OrdinalIgnoreCase))
                    {
                        c.InitLoraWeights = LoraInitialization.Gaussian;
                    }
                    else
                    {
                        // pissa, olora, loftq, eva, ...: irrelevant once trained weights are loaded; kept verbatim.
                        c.Extra[key] = node?.DeepClone();
                    }

                    break;
                case "use_dora": c.UseDora = r.Bool(); break;
                case "base_model_name_or_path": c.BaseModelNameOrPath = r.String(); break;
                case "revision": c.Revision = r.String(); break;
                case "task_type": c.TaskType = r.String(); break;
                case "inference_mode": c.InferenceMode = r.Bool(); break;
                default: c.Extra[key] = node?.DeepClone(); break;
            }
        }

        return c;
    }

    /// <summary>Writes this configuration as PEFT does (keys sorted, two-space indent), atomically.</summary>
    /// <param name="path">The file, or an existing folder to write <see cref="FileName"/> into.</param>
    public void Save(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var file = Directory.Exists(path) ? Path.Combine(path, FileName) : path;
        AtomicFile.WriteAllText(file, ToJson());
    }

    /// <summary>Serialises this configuration as PEFT's <c>save_pretrained</c> would write it (keys sorted).</summary>
    /// <returns>The JSON text.</returns>
    public string ToJson()
    {
        var o = new SortedDictionary<string, JsonNode?>(StringComparer.Ordinal)
        {
            ["alpha_pattern"] = new JsonObject(AlphaPattern.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)Number(kv.Value)))),
            ["auto_mapping"] = null,
            ["base_model_name_or_path"] = BaseModelNameOrPath,
            ["bias"] = BiasName(Bias),
            ["fan_in_fan_out"] = FanInFanOut,
            ["inference_mode"] = InferenceMode,
            ["init_lora_weights"] = InitLoraWeights switch
            {
                LoraInitialization.Gaussian => "gaussian",
                LoraInitialization.Random => false,
                _ => true,
            },
            ["layer_replication"] = null,
            ["layers_pattern"] = LayersPattern is null ? null : new JsonArray([.. LayersPattern.Select(s => (JsonNode?)s)]),
            ["layers_to_transform"] = LayersToTransform is null ? null : new JsonArray([.. LayersToTransform.Select(i => (JsonNode?)i)]),
            ["loftq_config"] = new JsonObject(),
            ["lora_alpha"] = Number(LoraAlpha),
            ["lora_dropout"] = LoraDropout,
            ["megatron_config"] = null,
            ["megatron_core"] = "megatron.core",
            ["modules_to_save"] = ModulesToSave is null ? null : new JsonArray([.. ModulesToSave.Select(s => (JsonNode?)s)]),
            ["peft_type"] = "LORA",
            ["r"] = R,
            ["rank_pattern"] = new JsonObject(RankPattern.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value))),
            ["revision"] = Revision,
            ["target_modules"] = ListOrPattern(TargetModules, TargetModulesPattern),
            ["task_type"] = TaskType,
            ["use_dora"] = UseDora,
            ["use_rslora"] = UseRslora,
        };
        // Keys newer than PEFT 0.13 are written only when set or when the file they came from had them: older PEFT
        // versions reject unknown keys.
        if (ExcludeModules is not null || ExcludeModulesPattern is not null || KeysRead.Contains("exclude_modules"))
        {
            o["exclude_modules"] = ListOrPattern(ExcludeModules, ExcludeModulesPattern);
        }

        if (LoraBias || KeysRead.Contains("lora_bias"))
        {
            o["lora_bias"] = LoraBias;
        }

        foreach (var (k, v) in Extra)
        {
            o[k] = v?.DeepClone();
        }

        var root = new JsonObject(o);
        return root.ToJsonString(new JsonSerializerOptions { WriteIndented = true, IndentSize = 2 });
    }

    /// <summary>Throws when the configuration uses a PEFT feature Distill does not implement.</summary>
    internal void ThrowIfUnsupported(string source)
    {
        if (UseDora)
        {
            throw new NotSupportedException($"{source}: 'use_dora' is true; DoRA adapters are not supported.");
        }

        foreach (var key in UnsupportedFeatureKeys)
        {
            if (Extra.TryGetValue(key, out var v) && IsTruthy(v))
            {
                throw new NotSupportedException($"{source}: '{key}' = {v!.ToJsonString()} is not supported by Distill.Lora.");
            }
        }
    }

    private static bool IsTruthy(JsonNode? v) => v switch
    {
        null => false,
        JsonArray a => a.Count > 0,
        JsonObject o => o.Count > 0,
        JsonValue jv when jv.TryGetValue<bool>(out var b) => b,
        JsonValue jv when jv.TryGetValue<string>(out var s) => s.Length > 0,
        _ => true,
    };

    private static JsonNode Number(double v) =>
        v == Math.Floor(v) && Math.Abs(v) < 1e15 ? JsonValue.Create((long)v) : JsonValue.Create(v);

    private static JsonNode? ListOrPattern(IList<string>? list, string? pattern) =>
        pattern is not null ? JsonValue.Create(pattern)
        : list is null ? null
        : new JsonArray([.. list.Select(s => (JsonNode?)s)]);

    private static string BiasName(LoraBiasMode b) => b switch
    {
        LoraBiasMode.All => "all",
        LoraBiasMode.LoraOnly => "lora_only",
        _ => "none",
    };

    private static LoraBiasMode ParseBias(string? s, string source) => s switch
    {
        null or "none" => LoraBiasMode.None,
        "all" => LoraBiasMode.All,
        "lora_only" => LoraBiasMode.LoraOnly,
        _ => throw new InvalidDataException($"{source}: 'bias' is '{s}'; expected 'none', 'all' or 'lora_only'."),
    };

    private sealed class Reader(string source, string key, JsonNode? node)
    {
        public string? String() => node switch
        {
            null => null,
            JsonValue v when v.TryGetValue<string>(out var s) => s,
            _ => throw Bad("a string"),
        };

        public bool Bool() => node is JsonValue v && v.TryGetValue<bool>(out var b) ? b : throw Bad("true or false");

        public double Double() => node is JsonValue v && v.GetValueKind() == JsonValueKind.Number ? v.GetValue<double>() : throw Bad("a number");

        public int Int()
        {
            var d = Double();
            return d == Math.Floor(d) && d is >= int.MinValue and <= int.MaxValue ? (int)d : throw Bad("an integer");
        }

        public (IList<string>? List, string? Pattern) ListOrPattern() => node switch
        {
            null => (null, null),
            JsonArray => (StringList(), null),
            _ => (null, String()),
        };

        public List<string>? StringList() => node switch
        {
            null => null,
            JsonArray a => [.. a.Select((e, i) => new Reader(source, $"{key}[{i}]", e).String() ?? throw new Reader(source, $"{key}[{i}]", e).Bad("a string"))],
            _ => throw Bad("a list of strings"),
        };

        public List<int>? IntList() => node switch
        {
            null => null,
            JsonArray a => [.. a.Select((e, i) => new Reader(source, $"{key}[{i}]", e).Int())],
            JsonValue => [Int()],
            _ => throw Bad("an integer or a list of integers"),
        };

        public JsonObject Object() => node switch
        {
            null => [],
            JsonObject o => o,
            _ => throw Bad("an object"),
        };

        public InvalidDataException Bad(string expected) =>
            new($"{source}: '{key}' must be {expected}, got {(node is null ? "null" : node.ToJsonString())}.");
    }
}
