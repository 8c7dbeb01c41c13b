using System.Diagnostics;
using Distill.IO;
using Microsoft.Extensions.Logging;
using TorchSharp;
using static TorchSharp.torch;

namespace Distill.Models;

/// <summary>Creates Distill models from HF folders or configs (transformers' <c>AutoModelForCausalLM</c>).</summary>
public static class AutoCausalLM
{
    /// <summary>
    /// Loads an HF model folder: <c>config.json</c>, weights from <c>model.safetensors</c> or the sharded
    /// <c>model.safetensors.index.json</c>, and <c>generation_config.json</c> when present. Tensors are read one at a time from
    /// the memory-mapped files straight into parameters created on <paramref name="device"/> in <paramref name="dtype"/>.
    /// </summary>
    /// <param name="dir">The model folder.</param>
    /// <param name="dtype">Parameter dtype; <see langword="null"/> = float32 (transformers' default, whatever the checkpoint stores).</param>
    /// <param name="device">Target device; <see langword="null"/> = CPU.</param>
    /// <param name="strict">When true (the default), missing, unexpected and shape-mismatched tensors are all listed in one
    /// <see cref="InvalidDataException"/>; when false they are skipped and the parameters they would fill keep a seed-0 random init.</param>
    /// <param name="logger">Optional logger (event 1101 on success, 1102 for what a non-strict load skipped, 1104 for weights
    /// holding NaN or infinity).</param>
    /// <param name="rejectNonFiniteWeights">When true, a weight holding NaN or infinity (in the file, or after conversion to
    /// <paramref name="dtype"/>) is an <see cref="InvalidDataException"/> naming the tensor and file; when false (the default)
    /// it is a warning (event 1104) naming them.</param>
    /// <returns>The model, in eval mode.</returns>
    /// <exception cref="InvalidDataException">The checkpoint does not match the architecture (strict; a tensor of an integer
    /// dtype never fills a floating-point parameter), a file is corrupt, or a weight is non-finite under
    /// <paramref name="rejectNonFiniteWeights"/>.</exception>
    /// <exception cref="NotSupportedException">Unsupported <c>model_type</c>.</exception>
    /// <remarks>The folder may be a Hugging Face hub-cache snapshot whose files are symbolic links into <c>blobs/</c>.</remarks>
    public static CausalLM FromPretrained(string dir, ScalarType? dtype = null, Device? device = null, bool strict = true, ILogger? logger = null, bool rejectNonFiniteWeights = false)
    {
        ArgumentException.ThrowIfNullOrEmpty(dir);
        if (!Directory.Exists(dir))
        {
            throw new DirectoryNotFoundException($"Model folder '{dir}' does not exist.");
        }

        var stopwatch = Stopwatch.StartNew();
        var config = ModelConfigLoader.Load(dir);
        var model = Create(config, dtype ?? ScalarType.Float32, device ?? torch.CPU);
        try
        {
            if (!strict)
            {
                // Tensors the checkpoint lacks keep transformers-style random values rather than uninitialised memory.
                using var generator = new Generator(0);
                model.InitializeWeights(generator);
            }

            var (loadedCount, problems) = LoadWeights(model, dir, strict, rejectNonFiniteWeights, out var nonFinite);
            if (logger is not null)
            {
                if (nonFinite is not null)
                {
                    Log.NonFiniteWeights(logger, dir, nonFinite);
                }

                if (problems is not null)
                {
                    Log.ModelLoadProblems(logger, dir, problems);
                }

                Log.ModelLoaded(logger, model.Config.ModelType, dir, loadedCount, model.parameters().Sum(p => p.NumberOfElements), model.DType.ToString(), model.Device.ToString(), stopwatch.Elapsed.TotalSeconds);
            }

            var generationConfig = Path.Combine(dir, "generation_config.json");
            if (File.Exists(generationConfig))
            {
                var text = InputFile.ReadAllText(generationConfig, ModelConfigLoader.MaxConfigBytes);
                _ = InputFile.ParseJsonObject(text, generationConfig, "Generation config");
                model.GenerationConfigJson = text;
            }

            model.eval();
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Creates a randomly initialised model as transformers' <c>_init_weights</c> does: weights normal(0, initializer_range)
    /// (GPT-2's c_proj weights σ/√(2·n_layer)), zero biases, unit norms, the pad-token embedding row zeroed for Llama/Qwen2.
    /// Values are drawn on the CPU from a generator seeded with <paramref name="seed"/>, so they are the same on every device.
    /// </summary>
    /// <param name="config">The configuration.</param>
    /// <param name="seed">The seed.</param>
    /// <param name="dtype">Parameter dtype; <see langword="null"/> = float32.</param>
    /// <param name="device">Target device; <see langword="null"/> = CPU.</param>
    /// <returns>The model, in eval mode.</returns>
    public static CausalLM FromConfig(CausalLMConfig config, long seed, ScalarType? dtype = null, Device? device = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        var model = Create(config, dtype ?? ScalarType.Float32, device ?? torch.CPU);
        using var generator = new Generator((ulong)seed);
        model.InitializeWeights(generator);
        model.eval();
        return model;
    }

    /// <summary>Creates the model class for a config, with uninitialised parameters.</summary>
    internal static CausalLM Create(CausalLMConfig config, ScalarType dtype, Device device)
    {
        if (dtype is not (ScalarType.Float32 or ScalarType.Float16 or ScalarType.BFloat16 or ScalarType.Float64))
        {
            throw new ArgumentException($"Model dtype must be a floating-point type; got {dtype}.", nameof(dtype));
        }

        return config switch
        {
            Gpt2Config g => new Gpt2ForCausalLM(g, dtype, device),
            Qwen2Config q => new Qwen2ForCausalLM(q, dtype, device),
            LlamaConfig l => new LlamaForCausalLM(l, dtype, device),
            _ => throw new NotSupportedException($"Config type {config.GetType().Name} (model_type '{config.ModelType}') is not supported (supported: {string.Join(", ", ModelConfigLoader.SupportedModelTypes)})."),
        };
    }

    /// <summary>Copies a checkpoint folder's tensors into the model's parameters (converting dtype, moving to its device).</summary>
    /// <returns>The number of tensors loaded, and a description of what was skipped (non-strict) or <see langword="null"/>.</returns>
    internal static (int Loaded, string? Problems) LoadWeights(CausalLM model, string dir, bool strict) => LoadWeights(model, dir, strict, rejectNonFinite: false, out _);

    /// <summary>As <see cref="LoadWeights(CausalLM, string, bool)"/>; also checks every loaded weight is finite.</summary>
    /// <param name="model">The model.</param>
    /// <param name="dir">The checkpoint folder.</param>
    /// <param name="strict">Whether mismatches throw.</param>
    /// <param name="rejectNonFinite">Whether a non-finite weight throws (else it is reported in <paramref name="nonFinite"/>).</param>
    /// <param name="nonFinite">The non-finite weights (name, file, count), or <see langword="null"/> when all are finite.</param>
    internal static (int Loaded, string? Problems) LoadWeights(CausalLM model, string dir, bool strict, bool rejectNonFinite, out string? nonFinite)
    {
        var nonFiniteList = new List<string>();
        (string File, string Name)? tiedHead = null;
        var state = model.state_dict();
        var expected = model.CheckpointKeys.ToHashSet(StringComparer.Ordinal);
        var loaded = new HashSet<string>(StringComparer.Ordinal);
        var unexpected = new List<string>();
        var mismatched = new List<string>();
        using var noGrad = torch.no_grad();
        foreach (var (file, names) in SafeTensors.ResolveCheckpoint(dir))
        {
            using var st = SafeTensors.Open(file);
            foreach (var name in names ?? [.. st.Tensors.Keys])
            {
                if (!st.Tensors.TryGetValue(name, out var info))
                {
                    throw new InvalidDataException($"Index in '{dir}' maps tensor '{name}' to '{file}', which does not contain it.");
                }

                var key = model.MapCheckpointKey(name);
                if (key is null)
                {
                    if (model.Config.TieWordEmbeddings && name == "lm_head.weight")
                    {
                        tiedHead = (file, name);
                    }

                    continue;
                }

                if (!expected.Contains(key))
                {
                    unexpected.Add($"{name} (in {Path.GetFileName(file)})");
                    continue;
                }

                var target = state[key];
                if (target.is_floating_point() && !SafeTensorsFile.IsFloat(info.ScalarType))
                {
                    mismatched.Add($"{name} in {Path.GetFileName(file)}: checkpoint dtype {info.DType} cannot fill the floating-point parameter {key}");
                    loaded.Add(key);
                    continue;
                }

                if (!target.shape.SequenceEqual(info.Shape))
                {
                    mismatched.Add($"{name} in {Path.GetFileName(file)}: checkpoint [{string.Join(", ", info.Shape)}], model [{string.Join(", ", target.shape)}]");
                    loaded.Add(key); // reported as a mismatch, not also as missing
                    continue;
                }

                using var scope = torch.NewDisposeScope();
                target.copy_(st.Read(name));
                loaded.Add(key);
                if (target.is_floating_point() && !target.isfinite().all().item<bool>())
                {
                    var count = target.isfinite().logical_not().sum().item<long>();
                    var what = $"'{name}' in '{file}' has {count} NaN/infinite value(s) of {target.NumberOfElements}";
                    if (rejectNonFinite)
                    {
                        throw new InvalidDataException($"Checkpoint '{dir}': weight {what}.");
                    }

                    nonFiniteList.Add(what);
                }
            }
        }

        if (tiedHead is { } head)
        {
            // A tied model ignores the checkpoint's lm_head.weight (as transformers does); if it differs from the embeddings
            // the config and the weights disagree, and loading would silently change the model.
            using var st = SafeTensors.Open(head.File);
            using var scope = torch.NewDisposeScope();
            var stored = st.Read(head.Name);
            var embedding = model.LmHeadWeight;
            if (!stored.shape.SequenceEqual(embedding.shape) || !stored.to(embedding.dtype, embedding.device).eq(embedding).all().item<bool>())
            {
                mismatched.Add($"lm_head.weight in {Path.GetFileName(head.File)} differs from the input embeddings, but config.json sets tie_word_embeddings");
            }
        }

        nonFinite = nonFiniteList.Count > 0 ? string.Join("; ", nonFiniteList) : null;
        var missing = expected.Where(k => !loaded.Contains(k)).ToList();
        if (missing.Count > 0 || unexpected.Count > 0 || mismatched.Count > 0)
        {
            var parts = new List<string>();
            if (missing.Count > 0)
            {
                parts.Add($"missing keys ({missing.Count}): {string.Join(", ", missing.Take(20))}{(missing.Count > 20 ? ", ..." : string.Empty)}");
            }

            if (unexpected.Count > 0)
            {
                parts.Add($"unexpected keys ({unexpected.Count}): {string.Join(", ", unexpected.Take(20))}{(unexpected.Count > 20 ? ", ..." : string.Empty)}");
            }

            if (mismatched.Count > 0)
            {
                parts.Add($"shape mismatches ({mismatched.Count}): {string.Join("; ", mismatched.Take(20))}{(mismatched.Count > 20 ? "; ..." : string.Empty)}");
            }

            var message = $"Checkpoint '{dir}' does not match the {model.GetType().Name} ({model.Config.ModelType}) its config.json describes: {string.Join(" | ", parts)}.";
            if (strict)
            {
                throw new InvalidDataException(message);
            }

            return (loaded.Count - mismatched.Count, message);
        }

        return (loaded.Count, null);
    }
}
