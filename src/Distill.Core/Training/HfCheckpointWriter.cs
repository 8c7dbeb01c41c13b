using Distill.IO;
using Distill.Models;
using static TorchSharp.torch;

namespace Distill.Training;

/// <summary>
/// Writes the student as an HF model folder (<c>config.json</c> + <c>model.safetensors</c>, sharded above the limit) through
/// <see cref="CausalLM.SavePretrained"/>, so every checkpoint's <c>student/</c> opens with transformers'
/// <c>from_pretrained</c> or <see cref="AutoCausalLM.FromPretrained"/>. Loading copies the stored tensors back bit for bit.
/// </summary>
/// <param name="maxShardBytes">Shard size limit passed to <see cref="CausalLM.SavePretrained"/>; <see langword="null"/> = 5 GB.</param>
public sealed class HfCheckpointWriter(long? maxShardBytes = null) : IModelCheckpointWriter
{
    /// <inheritdoc />
    /// <exception cref="ArgumentException">The model is not a Distill <see cref="CausalLM"/>.</exception>
    public void Save(ICausalLM model, string directory) => AsCausalLM(model).SavePretrained(directory, maxShardBytes);

    /// <inheritdoc />
    /// <exception cref="InvalidDataException">A tensor is missing or has another shape; the message names the folder, key and shapes.</exception>
    public void Load(ICausalLM model, string directory)
    {
        var lm = AsCausalLM(model);
        var single = Path.Combine(directory, SafeTensors.SingleFileName);
        var loaded = File.Exists(single) ? SafeTensors.Load(single) : SafeTensors.LoadSharded(directory);
        try
        {
            var state = lm.state_dict();
            using var noGrad = no_grad();
            foreach (var key in lm.CheckpointKeys)
            {
                if (!loaded.TryGetValue(key, out var source))
                {
                    throw new InvalidDataException($"Checkpoint '{directory}' has no tensor '{key}'.");
                }

                var target = state[key];
                if (!source.shape.SequenceEqual(target.shape))
                {
                    throw new InvalidDataException($"Checkpoint '{directory}': tensor '{key}' has shape [{string.Join(", ", source.shape)}], the model expects [{string.Join(", ", target.shape)}].");
                }

                target.copy_(source);
            }
        }
        finally
        {
            foreach (var t in loaded.Values)
            {
                t.Dispose();
            }
        }
    }

    private static CausalLM AsCausalLM(ICausalLM model)
    {
        ArgumentNullException.ThrowIfNull(model);
        return model as CausalLM ?? throw new ArgumentException($"HF checkpoints need a Distill.Models.CausalLM; got {model.GetType().Name}. Use StateDictCheckpointWriter for other models.", nameof(model));
    }
}
