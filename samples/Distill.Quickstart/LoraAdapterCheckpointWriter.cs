using Distill.IO;
using Distill.Lora;
using Distill.Training;

namespace Distill.Quickstart;

/// <summary>Checkpoints only the LoRA adapter, in PEFT's layout (<c>adapter_config.json</c> + <c>adapter_model.safetensors</c>).</summary>
/// <param name="lora">The injected adapter.</param>
internal sealed class LoraAdapterCheckpointWriter(LoraModel lora) : IModelCheckpointWriter
{
    public void Save(ICausalLM model, string directory) => lora.SaveAdapter(directory);

    public void Load(ICausalLM model, string directory)
    {
        var path = Path.Combine(directory, LoraModel.WeightsFileName);
        var tensors = SafeTensors.Load(path);
        try
        {
            lora.LoadAdapterStateDict(tensors, path);
        }
        finally
        {
            foreach (var t in tensors.Values)
            {
                t.Dispose();
            }
        }
    }
}
