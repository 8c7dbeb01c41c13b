namespace Distill.Training;

/// <summary>
/// Writes and restores the student's weights inside a checkpoint folder. The trainer calls it with a folder of its own
/// (<c>student/</c>) inside the temporary checkpoint folder, which is renamed into place only when every part is written.
/// </summary>
/// <remarks>
/// Implementations: <see cref="StateDictCheckpointWriter"/> (every tensor of the module, or only the trainable ones); an HF
/// <c>model.safetensors</c> + <c>config.json</c> writer for full fine-tuning; a PEFT <c>adapter_model.safetensors</c> writer for
/// LoRA. <see cref="Load"/> must restore the values bit for bit (exact resume depends on it). Not called concurrently.
/// </remarks>
public interface IModelCheckpointWriter
{
    /// <summary>Writes the model's weights into <paramref name="directory"/> (which exists and is empty).</summary>
    /// <param name="model">The student.</param>
    /// <param name="directory">The destination folder.</param>
    void Save(ICausalLM model, string directory);

    /// <summary>Restores into <paramref name="model"/> the weights <see cref="Save"/> wrote into <paramref name="directory"/>.</summary>
    /// <param name="model">The student, built with the same architecture.</param>
    /// <param name="directory">A folder written by <see cref="Save"/>.</param>
    void Load(ICausalLM model, string directory);
}

/// <summary>
/// Saves the module's state dict (parameters and buffers) in Distill's named-tensor file <c>weights.bin</c>; with
/// <c>trainableOnly</c>, only the parameters that require grad (e.g. LoRA adapters, whose frozen base need not be copied).
/// </summary>
/// <param name="trainableOnly">Whether to save only the parameters with <c>requires_grad</c>.</param>
public sealed class StateDictCheckpointWriter(bool trainableOnly = false) : IModelCheckpointWriter
{
    /// <summary>The file name inside the student folder.</summary>
    public const string FileName = "weights.bin";

    /// <summary>Gets a value indicating whether only trainable parameters are written.</summary>
    public bool TrainableOnly { get; } = trainableOnly;

    /// <inheritdoc />
    public void Save(ICausalLM model, string directory)
    {
        ArgumentNullException.ThrowIfNull(model);
        NamedTensorFile.Write(Path.Combine(directory, FileName), Select(model));
    }

    /// <inheritdoc />
    public void Load(ICausalLM model, string directory)
    {
        ArgumentNullException.ThrowIfNull(model);
        NamedTensorFile.LoadInto(Path.Combine(directory, FileName), Select(model).ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal));
    }

    private IEnumerable<KeyValuePair<string, TorchSharp.torch.Tensor>> Select(ICausalLM model) => TrainableOnly
        ? model.Module.named_parameters().Where(p => p.parameter.requires_grad).Select(p => new KeyValuePair<string, TorchSharp.torch.Tensor>(p.name, p.parameter))
        : model.Module.state_dict();
}
