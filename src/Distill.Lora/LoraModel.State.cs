using Distill.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Distill.Lora;

/// <summary>PEFT-format state dicts, adapter files and merged weights.</summary>
public sealed partial class LoraModel
{
    /// <summary>
    /// Gets the adapter state dict with PEFT's on-disk keys: <c>base_model.model.&lt;path&gt;.lora_A.weight</c> [r, in],
    /// <c>.lora_B.weight</c> [out, r] (<c>.lora_B.bias</c> [out] with lora_bias), biases per <see cref="LoraConfig.Bias"/>
    /// (<c>&lt;path&gt;.base_layer.bias</c> for adapted layers, as PEFT wraps them) and every tensor of the modules_to_save
    /// modules (<c>base_model.model.&lt;module&gt;.&lt;name&gt;</c>).
    /// </summary>
    /// <returns>Detached tensors sharing storage with the model (the caller owns the handles, not the storage).</returns>
    public Dictionary<string, Tensor> GetAdapterStateDict()
    {
        ThrowIfUnloaded();
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (key, tensor) in AdapterTensors())
        {
            result[key] = tensor.detach();
        }

        return result;
    }

    /// <summary>
    /// Copies a PEFT-format adapter state dict into the adapters (and modules_to_save / biases). Every expected key must be
    /// present with the expected shape, and no other key may be present.
    /// </summary>
    /// <param name="tensors">Tensors by PEFT key (any dtype and device; copied with a cast).</param>
    /// <param name="source">A name for error messages (usually the file path).</param>
    /// <exception cref="InvalidDataException">Missing or unexpected keys, or a shape mismatch (the message names key, expected and actual shapes).</exception>
    public void LoadAdapterStateDict(IReadOnlyDictionary<string, Tensor> tensors, string source = WeightsFileName)
    {
        ThrowIfUnloaded();
        ArgumentNullException.ThrowIfNull(tensors);
        if (IsMerged)
        {
            throw new InvalidOperationException("LoRA: cannot load adapter weights while merged; call Unmerge() first.");
        }

        var expected = AdapterTensors().ToDictionary(x => x.Key, x => x.Tensor, StringComparer.Ordinal);
        var aliases = BiasAliases();
        var resolved = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        var unexpected = new List<string>();
        foreach (var (key, value) in tensors)
        {
            var k = expected.ContainsKey(key) ? key : aliases.TryGetValue(key, out var alias) ? alias : null;
            if (k is null)
            {
                unexpected.Add(key);
            }
            else
            {
                resolved[k] = value;
            }
        }

        if (unexpected.Count > 0)
        {
            throw new InvalidDataException(
                $"{source}: unexpected key(s) {Quote(unexpected)}: no such adapter tensor in the model for this adapter_config.json "
                + $"(expected keys look like '{expected.Keys.First()}'; a key of a module absent from the model, or of a PEFT feature Distill does not implement, ends up here).");
        }

        var missing = expected.Keys.Where(k => !resolved.ContainsKey(k)).ToList();
        if (missing.Count > 0)
        {
            throw new InvalidDataException($"{source}: missing key(s) {Quote(missing)}.");
        }

        foreach (var (key, target) in expected)
        {
            var value = resolved[key];
            if (!value.shape.SequenceEqual(target.shape))
            {
                throw new InvalidDataException($"{source}: '{key}' has shape [{string.Join(", ", value.shape)}], expected [{string.Join(", ", target.shape)}]{RankHint(key, value)}.");
            }
        }

        using var noGrad = torch.no_grad();
        foreach (var (key, target) in expected)
        {
            target.copy_(resolved[key]);
        }
    }

    /// <summary>Writes <c>adapter_config.json</c> and <c>adapter_model.safetensors</c> (PEFT's layout; Python PEFT loads the folder unchanged), each atomically.</summary>
    /// <param name="directory">The folder (created if needed).</param>
    public void SaveAdapter(string directory)
    {
        ThrowIfUnloaded();
        ArgumentException.ThrowIfNullOrEmpty(directory);
        Directory.CreateDirectory(directory);
        using var scope = torch.NewDisposeScope();
        var tensors = GetAdapterStateDict();
        IO.SafeTensors.Save(Path.Combine(directory, WeightsFileName), tensors, new Dictionary<string, string> { ["format"] = "pt" });
        Config.Save(Path.Combine(directory, LoraConfig.FileName));
        Log.Saved(logger, directory, tensors.Count);
    }

    /// <summary>
    /// Gets the model's state dict with the adapters merged in and without any adapter tensor: plain HF names
    /// (<c>model.layers.0.self_attn.q_proj.weight</c>), ready for <c>model.safetensors</c>. The model is not changed.
    /// </summary>
    /// <returns>New tensors for adapted weights (and biases with lora_bias) when not merged; detached views of the model's tensors otherwise.</returns>
    public Dictionary<string, Tensor> GetMergedStateDict()
    {
        ThrowIfUnloaded();
        ThrowIfTiedTarget("export merged weights of");
        using var noGrad = torch.no_grad();
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        var state = Model.state_dict();

        // A Distill CausalLM knows its checkpoint keys (no tied lm_head); any other module: every non-adapter entry.
        var keys = Model is CausalLM causalLM ? causalLM.CheckpointKeys : state.Keys.Where(k => !IsAdapterParameter(k));
        foreach (var key in keys)
        {
            result[key] = state[key].detach();
        }

        foreach (var l in layers.Values.Where(l => !l.IsMerged))
        {
            var weightKey = $"{l.Path}.weight";
            result[weightKey] = l.Target.Weight.detach().add(l.DeltaWeight(), TorchScalars.One);
            if (l.DeltaBias() is Tensor db)
            {
                result[$"{l.Path}.bias"] = l.Target.Bias!.detach().add(db, TorchScalars.One);
            }
        }

        return result;
    }

    /// <summary>Writes <see cref="GetMergedStateDict"/> to one safetensors file (e.g. <c>model.safetensors</c>), atomically.</summary>
    /// <param name="path">The file.</param>
    /// <remarks>Shared tensors (tied embeddings) are written under every name the state dict lists; a checkpoint writer that knows the model's ties should be preferred for HF checkpoints.</remarks>
    public void SaveMergedWeights(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        using var scope = torch.NewDisposeScope();
        IO.SafeTensors.Save(path, GetMergedStateDict(), new Dictionary<string, string> { ["format"] = "pt" });
    }

    /// <summary>
    /// Saves the model with the adapters merged in as a plain HF checkpoint (<c>config.json</c>, <c>model.safetensors</c> or
    /// shards; no adapter tensor), through <see cref="CausalLM.SavePretrained"/>. The in-memory model is left as it was: the
    /// merge is undone bit-exactly afterwards.
    /// </summary>
    /// <param name="directory">The target folder.</param>
    /// <param name="maxShardBytes">Shard size limit, as in <see cref="CausalLM.SavePretrained"/>.</param>
    /// <exception cref="InvalidOperationException">The model is not a Distill <see cref="CausalLM"/>.</exception>
    public void SaveMergedPretrained(string directory, long? maxShardBytes = null)
    {
        ThrowIfUnloaded();
        if (Model is not CausalLM causalLM)
        {
            throw new InvalidOperationException($"LoRA: SaveMergedPretrained needs a Distill CausalLM; this model is a {Model.GetType().Name}. Use SaveMergedWeights.");
        }

        var wasMerged = IsMerged;
        if (!wasMerged)
        {
            Merge(keepOriginalWeights: true);
        }

        try
        {
            causalLM.SavePretrained(directory, maxShardBytes);
        }
        finally
        {
            if (!wasMerged)
            {
                Unmerge();
            }
        }
    }

    /// <summary>Every tensor the adapter file holds, by PEFT key, pointing at the live model tensors.</summary>
    private IEnumerable<(string Key, Tensor Tensor)> AdapterTensors()
    {
        foreach (var l in layers.Values)
        {
            foreach (var (name, p) in l.AdapterParameters())
            {
                yield return ($"{PeftKeyPrefix}{l.Path}.{name}", p);
            }
        }

        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (name, p) in BiasParameters())
        {
            var module = name.Length > 5 ? name[..^5] : string.Empty; // strip ".bias"
            var key = layers.ContainsKey(module) ? $"{PeftKeyPrefix}{module}.base_layer.bias" : $"{PeftKeyPrefix}{name}";
            if (seen.Add(key))
            {
                yield return (key, p);
            }
        }

        foreach (var (path, module) in modulesToSave)
        {
            foreach (var (name, t) in module.state_dict())
            {
                var key = $"{PeftKeyPrefix}{path}.{name}";
                if (seen.Add(key))
                {
                    yield return (key, t);
                }
            }
        }
    }

    /// <summary>Alternative keys accepted on load: <c>&lt;path&gt;.bias</c> for <c>&lt;path&gt;.base_layer.bias</c> of adapted layers.</summary>
    private Dictionary<string, string> BiasAliases()
    {
        var aliases = new Dictionary<string, string>(StringComparer.Ordinal);
        if (Config.Bias != LoraBiasMode.None)
        {
            foreach (var l in layers.Values.Where(l => l.Target.Bias is not null))
            {
                aliases[$"{PeftKeyPrefix}{l.Path}.bias"] = $"{PeftKeyPrefix}{l.Path}.base_layer.bias";
            }
        }

        return aliases;
    }

    private string RankHint(string key, Tensor value)
    {
        foreach (var l in layers.Values)
        {
            if (key == $"{PeftKeyPrefix}{l.Path}.{LoraLayer.AName}.weight" && value.ndim == 2 && value.shape[1] == l.Target.InFeatures)
            {
                return $" (rank mismatch: the tensor has rank {value.shape[0]}, adapter_config.json gives r = {l.Rank} for '{l.Path}')";
            }

            if (key == $"{PeftKeyPrefix}{l.Path}.{LoraLayer.BName}.weight" && value.ndim == 2 && value.shape[0] == l.Target.OutFeatures)
            {
                return $" (rank mismatch: the tensor has rank {value.shape[1]}, adapter_config.json gives r = {l.Rank} for '{l.Path}')";
            }
        }

        return string.Empty;
    }

    private static string Quote(List<string> keys) =>
        string.Join(", ", keys.Take(5).Select(k => $"'{k}'")) + (keys.Count > 5 ? $" and {keys.Count - 5} more" : string.Empty);
}
