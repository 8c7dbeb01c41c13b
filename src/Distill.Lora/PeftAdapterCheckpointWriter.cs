using Distill.IO;
using Distill.Training;

namespace Distill.Lora;

/// <summary>
/// Checkpoints only a LoRA adapter, in PEFT's layout: <c>adapter_config.json</c> + <c>adapter_model.safetensors</c>. Every
/// checkpoint's <c>student/</c> folder then opens with Python's <c>PeftModel.from_pretrained(base, folder)</c>, and with
/// <see cref="LoraModel.LoadAdapter(ICausalLM, string, bool, Microsoft.Extensions.Logging.ILogger?)"/>.
/// </summary>
/// <remarks>
/// The frozen base model is not written (it does not change during LoRA training); <see cref="Load"/> restores the adapter
/// tensors (and <c>modules_to_save</c> copies) bit for bit, which exact resume needs. Not thread-safe, like the trainer that calls it.
/// </remarks>
/// <example>
/// <code>
/// var lora = LoraModel.Inject(student, new LoraConfig { R = 8, LoraAlpha = 16, TargetModules = ["q_proj", "v_proj"] });
/// var writer = new PeftAdapterCheckpointWriter(lora, baseModelNameOrPath: "Qwen/Qwen2.5-0.5B");
/// </code>
/// </example>
public sealed class PeftAdapterCheckpointWriter : IModelCheckpointWriter
{
    /// <summary>Initializes a new instance of the <see cref="PeftAdapterCheckpointWriter"/> class.</summary>
    /// <param name="lora">The adapter injected into the student.</param>
    /// <param name="baseModelNameOrPath">
    /// Written to <c>adapter_config.json</c>'s <c>base_model_name_or_path</c> (PEFT's <c>AutoPeftModelForCausalLM</c> loads the
    /// base from it): a hub id or the base model's folder. <see langword="null"/> keeps <see cref="LoraConfig.BaseModelNameOrPath"/>.
    /// </param>
    public PeftAdapterCheckpointWriter(LoraModel lora, string? baseModelNameOrPath = null)
    {
        ArgumentNullException.ThrowIfNull(lora);
        Lora = lora;
        if (baseModelNameOrPath is not null)
        {
            ArgumentException.ThrowIfNullOrWhiteSpace(baseModelNameOrPath);
            lora.Config.BaseModelNameOrPath = baseModelNameOrPath;
        }
    }

    /// <summary>Gets the adapter this writer saves and restores.</summary>
    public LoraModel Lora { get; }

    /// <inheritdoc />
    /// <remarks>Writes <see cref="LoraConfig.FileName"/> and <see cref="LoraModel.WeightsFileName"/>, each atomically.</remarks>
    public void Save(ICausalLM model, string directory)
    {
        ArgumentNullException.ThrowIfNull(model);
        ThrowIfOtherModel(model);
        Lora.SaveAdapter(directory);
    }

    /// <inheritdoc />
    /// <exception cref="FileNotFoundException">The folder has no <c>adapter_model.safetensors</c>.</exception>
    /// <exception cref="InvalidDataException">A tensor is missing, unexpected or has another shape; the message names the file and key.</exception>
    public void Load(ICausalLM model, string directory)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentException.ThrowIfNullOrEmpty(directory);
        ThrowIfOtherModel(model);
        var path = Path.Combine(directory, LoraModel.WeightsFileName);
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"Adapter checkpoint '{directory}' has no '{LoraModel.WeightsFileName}'.", path);
        }

        var tensors = SafeTensors.Load(path);
        try
        {
            Lora.LoadAdapterStateDict(tensors, path);
        }
        finally
        {
            foreach (var t in tensors.Values)
            {
                t.Dispose();
            }
        }
    }

    private void ThrowIfOtherModel(ICausalLM model)
    {
        if (!ReferenceEquals(model.Module, Lora.Model))
        {
            throw new ArgumentException("This writer's adapter was injected into another model; create the writer with the student's LoraModel.", nameof(model));
        }
    }
}
