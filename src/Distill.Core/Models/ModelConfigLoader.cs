using System.Text.Json;
using System.Text.Json.Nodes;
using Distill.IO;
using static TorchSharp.torch;

namespace Distill.Models;

/// <summary>
/// Parses HF <c>config.json</c> files into typed configs and writes them back. Accepts both the transformers-v4 spellings
/// (<c>torch_dtype</c>, <c>rope_theta</c>, <c>rope_scaling</c>) and the v5 ones (<c>dtype</c>, <c>rope_parameters</c>), GPT-2's
/// own names (<c>n_embd</c>, <c>n_layer</c>, ...), and <c>eos_token_id</c> as a number or a list. Missing keys take
/// transformers' defaults for the model type.
/// </summary>
public static class ModelConfigLoader
{
    /// <summary>The largest config.json accepted (16 MiB; real ones are a few KB).</summary>
    public const long MaxConfigBytes = 16L << 20;

    /// <summary>The supported <c>model_type</c> values.</summary>
    public static IReadOnlyList<string> SupportedModelTypes { get; } = ["gpt2", "llama", "mistral", "qwen2"];

    /// <summary>Loads <c>config.json</c> from a file or a model folder.</summary>
    /// <param name="path">A <c>config.json</c> path or the folder holding it.</param>
    /// <returns>The typed config (<see cref="Gpt2Config"/>, <see cref="LlamaConfig"/> or <see cref="Qwen2Config"/>).</returns>
    /// <exception cref="FileNotFoundException">No config.json.</exception>
    /// <exception cref="InvalidDataException">Malformed JSON or a key of the wrong type (named in the message).</exception>
    /// <exception cref="NotSupportedException">An unsupported <c>model_type</c> (the message lists the supported ones).</exception>
    public static CausalLMConfig Load(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var file = Directory.Exists(path) ? Path.Combine(path, "config.json") : path;
        if (!File.Exists(file))
        {
            throw new FileNotFoundException($"Model config '{file}' does not exist.", file);
        }

        return Parse(InputFile.ReadAllText(file, MaxConfigBytes), file);
    }

    /// <summary>Parses config.json text.</summary>
    /// <param name="json">The JSON text.</param>
    /// <param name="source">Where it came from, for error messages.</param>
    /// <returns>The typed config.</returns>
    public static CausalLMConfig Parse(string json, string source = "config.json")
    {
        ArgumentNullException.ThrowIfNull(json);
        var root = InputFile.ParseJsonObject(json, source, "Model config");

        var r = new Reader(root, source);
        var modelType = r.String("model_type", null)
            ?? throw new InvalidDataException($"Model config '{source}' has no 'model_type' (supported: {string.Join(", ", SupportedModelTypes)}).");
        CausalLMConfig config = modelType switch
        {
            "gpt2" => ParseGpt2(r),
            "llama" => ParseRope(r, new LlamaConfig
            {
                ModelType = modelType,
                VocabSize = r.Int("vocab_size", 32000),
                HiddenSize = r.Int("hidden_size", 4096),
                NumHiddenLayers = r.Int("num_hidden_layers", 32),
                NumAttentionHeads = r.Int("num_attention_heads", 32),
                MaxPositionEmbeddings = r.Int("max_position_embeddings", 2048),
                IntermediateSize = r.Int("intermediate_size", 11008),
                AttentionBias = r.Bool("attention_bias", false),
                MlpBiasEnabled = r.Bool("mlp_bias", false),
                SlidingWindow = r.NullableInt("sliding_window", null),
            }),
            "mistral" => ParseRope(r, new LlamaConfig
            {
                ModelType = modelType,
                VocabSize = r.Int("vocab_size", 32000),
                HiddenSize = r.Int("hidden_size", 4096),
                NumHiddenLayers = r.Int("num_hidden_layers", 32),
                NumAttentionHeads = r.Int("num_attention_heads", 32),
                NumKeyValueHeads = 8,
                MaxPositionEmbeddings = r.Int("max_position_embeddings", 4096 * 32),
                IntermediateSize = r.Int("intermediate_size", 14336),
                SlidingWindow = r.NullableInt("sliding_window", 4096),
            }),
            "qwen2" => ParseRope(r, new Qwen2Config
            {
                ModelType = modelType,
                VocabSize = r.Int("vocab_size", 151936),
                HiddenSize = r.Int("hidden_size", 4096),
                NumHiddenLayers = r.Int("num_hidden_layers", 32),
                NumAttentionHeads = r.Int("num_attention_heads", 32),
                MaxPositionEmbeddings = r.Int("max_position_embeddings", 32768),
                IntermediateSize = r.Int("intermediate_size", 22016),
                UseSlidingWindow = r.Bool("use_sliding_window", false),
                SlidingWindow = r.NullableInt("sliding_window", 4096),
                MaxWindowLayers = r.Int("max_window_layers", 28),
            }),
            _ => throw new NotSupportedException($"Model config '{source}': model_type '{modelType}' is not supported (supported: {string.Join(", ", SupportedModelTypes)})."),
        };

        config.TieWordEmbeddings = r.Bool("tie_word_embeddings", config.TieWordEmbeddings);
        config.BosTokenId = r.NullableLong("bos_token_id", config.BosTokenId);
        config.PadTokenId = r.NullableLong("pad_token_id", config.PadTokenId);
        config.EosTokenIds = r.LongList("eos_token_id", config.EosTokenIds);
        config.SourceJson = root;
        Validate(config, source);
        return config;
    }

    /// <summary>Reads the checkpoint dtype (<c>dtype</c>, older <c>torch_dtype</c>), if the config names one.</summary>
    /// <param name="config">A config loaded from a file.</param>
    /// <returns>The dtype, or <see langword="null"/> when absent or unrecognised.</returns>
    public static ScalarType? StoredDType(CausalLMConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        var name = (config.SourceJson?["dtype"] ?? config.SourceJson?["torch_dtype"]) is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;
        return name switch
        {
            "float32" => ScalarType.Float32,
            "float16" => ScalarType.Float16,
            "bfloat16" => ScalarType.BFloat16,
            _ => null,
        };
    }

    /// <summary>Writes a config as HF <c>config.json</c> text (keys Distill does not model are kept from the loaded file).</summary>
    /// <param name="config">The config.</param>
    /// <param name="dtype">The dtype of the saved weights, written as <c>torch_dtype</c> (and <c>dtype</c> if the source had it).</param>
    /// <returns>Indented JSON.</returns>
    public static string ToJson(CausalLMConfig config, ScalarType? dtype = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        var o = config.SourceJson?.DeepClone().AsObject() ?? [];
        o["model_type"] = config.ModelType;
        o["vocab_size"] = config.VocabSize;
        o["tie_word_embeddings"] = config.TieWordEmbeddings;
        Set(o, "bos_token_id", config.BosTokenId);
        Set(o, "pad_token_id", config.PadTokenId);
        o["eos_token_id"] = config.EosTokenIds.Count switch
        {
            0 => null,
            1 => config.EosTokenIds[0],
            _ => new JsonArray([.. config.EosTokenIds.Select(x => (JsonNode)x)]),
        };
        switch (config)
        {
            case Gpt2Config g:
                o["architectures"] ??= new JsonArray("GPT2LMHeadModel");
                o["n_embd"] = g.HiddenSize;
                o["n_layer"] = g.NumHiddenLayers;
                o["n_head"] = g.NumAttentionHeads;
                o["n_positions"] = g.MaxPositionEmbeddings;
                Set(o, "n_inner", g.InnerSize);
                o["layer_norm_epsilon"] = g.LayerNormEpsilon;
                o["initializer_range"] = g.InitializerRange;
                o["activation_function"] = g.ActivationFunction;
                o["scale_attn_weights"] = g.ScaleAttentionWeights;
                o["scale_attn_by_inverse_layer_idx"] = g.ScaleAttentionByInverseLayerIndex;
                o["resid_pdrop"] = g.ResidualDropout;
                o["embd_pdrop"] = g.EmbeddingDropout;
                o["attn_pdrop"] = g.AttentionDropout;
                break;
            case RopeDecoderConfig d:
                o["architectures"] ??= new JsonArray(d.ModelType switch { "mistral" => "MistralForCausalLM", "qwen2" => "Qwen2ForCausalLM", _ => "LlamaForCausalLM" });
                o["hidden_size"] = d.HiddenSize;
                o["num_hidden_layers"] = d.NumHiddenLayers;
                o["num_attention_heads"] = d.NumAttentionHeads;
                o["num_key_value_heads"] = d.EffectiveNumKeyValueHeads;
                Set(o, "head_dim", d.HeadDim);
                o["max_position_embeddings"] = d.MaxPositionEmbeddings;
                o["intermediate_size"] = d.IntermediateSize;
                o["rms_norm_eps"] = d.RmsNormEps;
                o["hidden_act"] = d.HiddenAct;
                o["initializer_range"] = d.InitializerRange;
                o["attention_dropout"] = d.AttentionDropout;
                WriteRope(o, d);
                if (d is LlamaConfig l)
                {
                    o["attention_bias"] = l.AttentionBias;
                    o["mlp_bias"] = l.MlpBiasEnabled;
                    if (l.ModelType == "mistral" || l.SlidingWindow is not null)
                    {
                        o["sliding_window"] = l.SlidingWindow;
                    }
                }
                else if (d is Qwen2Config q)
                {
                    o["use_sliding_window"] = q.UseSlidingWindow;
                    o["sliding_window"] = q.SlidingWindow;
                    o["max_window_layers"] = q.MaxWindowLayers;
                }

                break;
            default:
                throw new NotSupportedException($"Config type {config.GetType().Name} cannot be written (supported model types: {string.Join(", ", SupportedModelTypes)}).");
        }

        if (dtype is { } dt)
        {
            var name = dt switch
            {
                ScalarType.Float32 => "float32",
                ScalarType.Float16 => "float16",
                ScalarType.BFloat16 => "bfloat16",
                _ => throw new NotSupportedException($"Model dtype {dt} has no HF name."),
            };
            o["torch_dtype"] = name;
            if (o.ContainsKey("dtype"))
            {
                o["dtype"] = name;
            }
        }

        return o.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n";
    }

    private static void WriteRope(JsonObject o, RopeDecoderConfig d)
    {
        if (o["rope_parameters"] is JsonObject rp)
        {
            // transformers v5 layout.
            rp["rope_theta"] = d.RopeTheta;
            rp["rope_type"] = d.RopeScaling?.RopeType ?? "default";
            WriteScaling(rp, d.RopeScaling);
            return;
        }

        o["rope_theta"] = d.RopeTheta;
        if (d.RopeScaling is null)
        {
            o["rope_scaling"] = null;
            return;
        }

        var rs = new JsonObject { ["rope_type"] = d.RopeScaling.RopeType };
        WriteScaling(rs, d.RopeScaling);
        o["rope_scaling"] = rs;
    }

    private static void WriteScaling(JsonObject target, RopeScaling? s)
    {
        if (s is null || s.RopeType == "default")
        {
            return;
        }

        target["factor"] = s.Factor;
        if (s.RopeType == "llama3")
        {
            target["low_freq_factor"] = s.LowFreqFactor;
            target["high_freq_factor"] = s.HighFreqFactor;
            target["original_max_position_embeddings"] = s.OriginalMaxPositionEmbeddings;
        }
    }

    private static void Set<T>(JsonObject o, string key, T? value)
        where T : struct
    {
        if (value is { } v)
        {
            o[key] = JsonValue.Create(v);
        }
        else if (o.ContainsKey(key))
        {
            o[key] = null;
        }
    }

    private static Gpt2Config ParseGpt2(Reader r)
    {
        var c = new Gpt2Config
        {
            ModelType = "gpt2",
            VocabSize = r.Int("vocab_size", 50257),
            HiddenSize = r.Int(["n_embd", "hidden_size"], 768),
            NumHiddenLayers = r.Int(["n_layer", "num_hidden_layers"], 12),
            NumAttentionHeads = r.Int(["n_head", "num_attention_heads"], 12),
            MaxPositionEmbeddings = r.Int(["n_positions", "n_ctx", "max_position_embeddings"], 1024),
            InnerSize = r.NullableInt("n_inner", null),
            LayerNormEpsilon = r.Double("layer_norm_epsilon", 1e-5),
            InitializerRange = r.Double("initializer_range", 0.02),
            ActivationFunction = r.String("activation_function", "gelu_new")!,
            ScaleAttentionWeights = r.Bool("scale_attn_weights", true),
            ScaleAttentionByInverseLayerIndex = r.Bool("scale_attn_by_inverse_layer_idx", false),
            ResidualDropout = r.Double("resid_pdrop", 0.1),
            EmbeddingDropout = r.Double("embd_pdrop", 0.1),
            AttentionDropout = r.Double("attn_pdrop", 0.1),
            BosTokenId = 50256,
            EosTokenIds = [50256],
        };
        return c;
    }

    private static T ParseRope<T>(Reader r, T c)
        where T : RopeDecoderConfig
    {
        c.NumKeyValueHeads = r.NullableInt("num_key_value_heads", c.NumKeyValueHeads);
        c.HeadDim = r.NullableInt("head_dim", null);
        c.RmsNormEps = r.Double("rms_norm_eps", 1e-6);
        c.HiddenAct = r.String("hidden_act", "silu")!;
        c.InitializerRange = r.Double("initializer_range", 0.02);
        c.AttentionDropout = r.Double("attention_dropout", 0.0);
        if (c.ModelType == "llama")
        {
            c.BosTokenId = 1;
            c.EosTokenIds = [2];
        }

        // v5: rope_parameters {rope_type, rope_theta, factor, ...}; v4: rope_theta + rope_scaling {type|rope_type, factor, ...}.
        var scaling = r.Object("rope_parameters") ?? r.Object("rope_scaling");
        c.RopeTheta = r.Double("rope_theta", 10000.0);
        if (scaling is not null)
        {
            var s = new Reader(scaling, r.Source + " rope parameters");
            c.RopeTheta = s.Double("rope_theta", c.RopeTheta);
            var type = s.String("rope_type", null) ?? s.String("type", "default")!;
            if (type is not ("default" or "linear" or "llama3"))
            {
                throw new NotSupportedException($"Model config '{r.Source}': rope type '{type}' is not supported (supported: default, linear, llama3).");
            }

            if (type != "default")
            {
                c.RopeScaling = new RopeScaling
                {
                    RopeType = type,
                    Factor = s.Double("factor", 1.0),
                    LowFreqFactor = s.Double("low_freq_factor", 1.0),
                    HighFreqFactor = s.Double("high_freq_factor", 4.0),
                    OriginalMaxPositionEmbeddings = s.Int("original_max_position_embeddings", 8192),
                };
            }
        }

        return c;
    }

    private static void Validate(CausalLMConfig c, string source)
    {
        // Every size is checked against an explicit limit before anything is allocated.
        void Size(long value, string key, long max)
        {
            if (value <= 0 || value > max)
            {
                throw new InvalidDataException($"Model config '{source}': '{key}' must be in [1, {max}] (ModelConfigLimits), found {value}.");
            }
        }

        void Number(double value, string key, double min, bool minExclusive, double max = double.MaxValue)
        {
            if (!double.IsFinite(value) || value < min || (minExclusive && value == min) || value > max)
            {
                var range = minExclusive ? $"> {min}" : $">= {min}";
                throw new InvalidDataException($"Model config '{source}': '{key}' must be {range}{(max < double.MaxValue ? $" and <= {max}" : string.Empty)}, found {value}.");
            }
        }

        var gpt2 = c is Gpt2Config;
        Size(c.VocabSize, "vocab_size", ModelConfigLimits.MaxVocabSize);
        Size(c.HiddenSize, gpt2 ? "n_embd" : "hidden_size", ModelConfigLimits.MaxHiddenSize);
        Size(c.NumHiddenLayers, gpt2 ? "n_layer" : "num_hidden_layers", ModelConfigLimits.MaxLayers);
        Size(c.NumAttentionHeads, gpt2 ? "n_head" : "num_attention_heads", ModelConfigLimits.MaxAttentionHeads);
        Size(c.MaxPositionEmbeddings, gpt2 ? "n_positions" : "max_position_embeddings", ModelConfigLimits.MaxPositionEmbeddings);
        if (c is Gpt2Config g)
        {
            if (g.HiddenSize % g.NumAttentionHeads != 0)
            {
                throw new InvalidDataException($"Model config '{source}': n_embd {g.HiddenSize} is not divisible by n_head {g.NumAttentionHeads}.");
            }

            if (g.InnerSize is { } inner)
            {
                Size(inner, "n_inner", ModelConfigLimits.MaxIntermediateSize);
            }

            Number(g.LayerNormEpsilon, "layer_norm_epsilon", 0, minExclusive: true, max: ModelConfigLimits.MaxNormEpsilon);
            Number(g.InitializerRange, "initializer_range", 0, minExclusive: false);
            Number(g.ResidualDropout, "resid_pdrop", 0, minExclusive: false, max: 1);
            Number(g.EmbeddingDropout, "embd_pdrop", 0, minExclusive: false, max: 1);
            Number(g.AttentionDropout, "attn_pdrop", 0, minExclusive: false, max: 1);
        }

        if (c is RopeDecoderConfig d)
        {
            Size(d.IntermediateSize, "intermediate_size", ModelConfigLimits.MaxIntermediateSize);
            if (d.NumKeyValueHeads is { } kv)
            {
                Size(kv, "num_key_value_heads", ModelConfigLimits.MaxAttentionHeads);
            }

            if (d.HeadDim is { } hd)
            {
                Size(hd, "head_dim", ModelConfigLimits.MaxHiddenSize);
            }

            if (d.HeadDim is null && d.HiddenSize % d.NumAttentionHeads != 0)
            {
                throw new InvalidDataException($"Model config '{source}': hidden_size {d.HiddenSize} is not divisible by num_attention_heads {d.NumAttentionHeads} and no head_dim is given.");
            }

            if (d.EffectiveNumKeyValueHeads <= 0 || d.NumAttentionHeads % d.EffectiveNumKeyValueHeads != 0)
            {
                throw new InvalidDataException($"Model config '{source}': num_attention_heads {d.NumAttentionHeads} is not a multiple of num_key_value_heads {d.EffectiveNumKeyValueHeads}.");
            }

            if (d.EffectiveHeadDim % 2 != 0)
            {
                throw new InvalidDataException($"Model config '{source}': head_dim {d.EffectiveHeadDim} must be even for RoPE.");
            }

            Number(d.RmsNormEps, "rms_norm_eps", 0, minExclusive: true, max: ModelConfigLimits.MaxNormEpsilon);
            Number(d.RopeTheta, "rope_theta", 0, minExclusive: true, max: ModelConfigLimits.MaxRopeTheta);
            Number(d.InitializerRange, "initializer_range", 0, minExclusive: false);
            Number(d.AttentionDropout, "attention_dropout", 0, minExclusive: false, max: 1);
            var window = d switch
            {
                LlamaConfig l => l.SlidingWindow,
                Qwen2Config { UseSlidingWindow: true } q => q.SlidingWindow,
                _ => null,
            };
            if (window is { } w)
            {
                Size(w, "sliding_window", int.MaxValue);
            }

            if (d.RopeScaling is { } rs)
            {
                Number(rs.Factor, "rope_scaling.factor", 0, minExclusive: true);
                if (rs.RopeType == "llama3")
                {
                    Number(rs.LowFreqFactor, "rope_scaling.low_freq_factor", 0, minExclusive: true);
                    Number(rs.HighFreqFactor, "rope_scaling.high_freq_factor", 0, minExclusive: true);
                    Size(rs.OriginalMaxPositionEmbeddings, "rope_scaling.original_max_position_embeddings", ModelConfigLimits.MaxPositionEmbeddings);
                    if (rs.HighFreqFactor <= rs.LowFreqFactor)
                    {
                        throw new InvalidDataException($"Model config '{source}': rope_scaling.high_freq_factor {rs.HighFreqFactor} must exceed low_freq_factor {rs.LowFreqFactor} (llama3 divides by their difference).");
                    }
                }
            }
        }

        // The sizes can each be plausible and still multiply into more parameters than any machine holds.
        var parameters = EstimateParameters(c);
        if (parameters > ModelConfigLimits.MaxParameters)
        {
            throw new InvalidDataException($"Model config '{source}': the sizes give about {parameters:E2} parameters, over the limit of {ModelConfigLimits.MaxParameters:E2} (ModelConfigLimits.MaxParameters).");
        }
    }

    /// <summary>A parameter count from the sizes (embeddings, attention, MLP, head), in double so it cannot overflow.</summary>
    private static double EstimateParameters(CausalLMConfig c)
    {
        double h = c.HiddenSize, layers = c.NumHiddenLayers, vocab = c.VocabSize;
        double perLayer, extra = 0;
        switch (c)
        {
            case Gpt2Config g:
                perLayer = (4 * h * h) + (2 * h * (g.InnerSize ?? 4 * c.HiddenSize));
                extra = (double)g.MaxPositionEmbeddings * h;
                break;
            case RopeDecoderConfig d:
                double q = (double)d.NumAttentionHeads * d.EffectiveHeadDim, kv = (double)d.EffectiveNumKeyValueHeads * d.EffectiveHeadDim;
                perLayer = (2 * h * q) + (2 * h * kv) + (3 * h * d.IntermediateSize);
                break;
            default:
                perLayer = 12 * h * h;
                break;
        }

        return (layers * perLayer) + (2 * vocab * h) + extra;
    }

    /// <summary>Typed key access with errors naming the file and key.</summary>
    private sealed class Reader(JsonObject o, string source)
    {
        public string Source => source;

        public JsonObject? Object(string key) => o[key] switch
        {
            null => null,
            JsonObject x => x,
            var x => throw Bad(key, "an object", x),
        };

        public string? String(string key, string? fallback) => o[key] switch
        {
            null => fallback,
            JsonValue v when v.TryGetValue<string>(out var s) => s,
            var x => throw Bad(key, "a string", x),
        };

        public bool Bool(string key, bool fallback) => o[key] switch
        {
            null => fallback,
            JsonValue v when v.TryGetValue<bool>(out var b) => b,
            var x => throw Bad(key, "true or false", x),
        };

        public double Double(string key, double fallback) => o[key] switch
        {
            null => fallback,
            JsonValue v when v.GetValueKind() == JsonValueKind.Number && v.TryGetValue<double>(out var d) && double.IsFinite(d) => d,
            var x => throw Bad(key, "a finite number", x),
        };

        public int Int(string key, int fallback) => NullableInt(key, fallback) ?? fallback;

        public int Int(string[] keys, int fallback)
        {
            foreach (var k in keys)
            {
                if (NullableInt(k, null) is { } v)
                {
                    return v;
                }
            }

            return fallback;
        }

        public int? NullableInt(string key, int? fallback)
        {
            if (!o.TryGetPropertyValue(key, out var node))
            {
                return fallback;
            }

            return node switch
            {
                null => null,
                JsonValue v when v.GetValueKind() == JsonValueKind.Number && double.IsInteger(v.GetValue<double>()) && Math.Abs(v.GetValue<double>()) <= int.MaxValue => (int)v.GetValue<double>(),
                var x => throw Bad(key, "an integer", x),
            };
        }

        public long? NullableLong(string key, long? fallback)
        {
            if (!o.TryGetPropertyValue(key, out var node))
            {
                return fallback;
            }

            return node switch
            {
                null => null,
                JsonValue v when v.TryGetValue<long>(out var l) => l,
                var x => throw Bad(key, "an integer", x),
            };
        }

        public IReadOnlyList<long> LongList(string key, IReadOnlyList<long> fallback)
        {
            if (!o.TryGetPropertyValue(key, out var node))
            {
                return fallback;
            }

            return node switch
            {
                null => [],
                JsonValue v when v.TryGetValue<long>(out var l) => [l],
                JsonArray a => [.. a.Select(x => x is JsonValue xv && xv.TryGetValue<long>(out var l) ? l : throw Bad(key, "an integer or a list of integers", a))],
                var x => throw Bad(key, "an integer or a list of integers", x),
            };
        }

        private InvalidDataException Bad(string key, string expected, JsonNode? found) =>
            new($"Model config '{source}': key '{key}' must be {expected}, found {InputFile.Bound(found?.ToJsonString())}.");
    }
}
