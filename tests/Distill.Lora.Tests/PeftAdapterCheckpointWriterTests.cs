using System.Text.Json.Nodes;
using Distill.Models;
using TorchSharp;

namespace Distill.Lora.Tests;

public sealed class PeftAdapterCheckpointWriterTests
{
    private static LlamaConfig TinyLlama() => new()
    {
        ModelType = "llama", VocabSize = 32, HiddenSize = 16, NumHiddenLayers = 2, NumAttentionHeads = 4, NumKeyValueHeads = 2,
        IntermediateSize = 24, MaxPositionEmbeddings = 64,
    };

    [Fact]
    public void Save_WritesPeftFolderWithBaseModelName_LoadRestoresAdapterBitForBit()
    {
        using var dir = TestRuntimeFolders.Create();
        using var model = AutoCausalLM.FromConfig(TinyLlama(), seed: 1);
        var lora = LoraModel.Inject(model, new LoraConfig { R = 4, LoraAlpha = 8, TargetModules = ["q_proj", "v_proj"], InitLoraWeights = LoraInitialization.Random });
        var writer = new PeftAdapterCheckpointWriter(lora, baseModelNameOrPath: "models/tiny-llama");
        var saved = lora.GetAdapterStateDict().ToDictionary(kv => kv.Key, kv => kv.Value.clone());

        writer.Save(model, dir.Path);

        Assert.Equal(["adapter_config.json", "adapter_model.safetensors"], Directory.GetFiles(dir.Path).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(dir.Path, LoraConfig.FileName)))!;
        Assert.Equal("models/tiny-llama", (string?)config["base_model_name_or_path"]);
        Assert.Equal(4, (int)config["r"]!);

        using (torch.no_grad())
        {
            foreach (var (_, p) in lora.TrainableParameters())
            {
                p.add_(1.0); // training moves the adapter on
            }
        }

        writer.Load(model, dir.Path);
        var restored = lora.GetAdapterStateDict();
        Assert.Equal(saved.Keys.Order(StringComparer.Ordinal), restored.Keys.Order(StringComparer.Ordinal));
        foreach (var (key, tensor) in saved)
        {
            Assert.True(tensor.BitEqual(restored[key]), key);
        }
    }

    [Fact]
    public void Constructor_WithoutName_KeepsTheConfigsBaseModelName()
    {
        using var dir = TestRuntimeFolders.Create();
        using var model = AutoCausalLM.FromConfig(TinyLlama(), seed: 1);
        var lora = LoraModel.Inject(model, new LoraConfig { R = 2, BaseModelNameOrPath = "from-config" });
        new PeftAdapterCheckpointWriter(lora).Save(model, dir.Path);
        Assert.Equal("from-config", (string?)JsonNode.Parse(File.ReadAllText(Path.Combine(dir.Path, LoraConfig.FileName)))!["base_model_name_or_path"]);
    }

    [Fact]
    public void SaveAndLoad_OtherModelOrMissingFile_ClearErrors()
    {
        using var dir = TestRuntimeFolders.Create();
        using var model = AutoCausalLM.FromConfig(TinyLlama(), seed: 1);
        using var other = AutoCausalLM.FromConfig(TinyLlama(), seed: 2);
        var writer = new PeftAdapterCheckpointWriter(LoraModel.Inject(model, new LoraConfig { R = 2 }));

        Assert.Throws<ArgumentException>(() => writer.Save(other, dir.Path));
        var missing = Assert.Throws<FileNotFoundException>(() => writer.Load(model, dir.Path));
        Assert.Contains(LoraModel.WeightsFileName, missing.Message, StringComparison.Ordinal);
    }
}
