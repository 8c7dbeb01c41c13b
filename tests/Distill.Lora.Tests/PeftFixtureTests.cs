using System.Text.Json.Nodes;
using Distill.IO;
using Distill.Models;
using TorchSharp;

namespace Distill.Lora.Tests;

/// <summary>
/// Adapters written by fixtures/make_peft_fixtures.py, which follows PEFT's code (key names, [r, in]/[out, r] layout,
/// rank/alpha patterns, rsLoRA scaling, fan_in_fan_out transpose, modules_to_save keys) and computes the merged weights
/// W + scaling·B·A independently in double precision.
/// </summary>
public sealed class PeftFixtureTests
{
    private static string Fixture(params string[] parts) => Path.Combine([AppContext.BaseDirectory, "fixtures", .. parts]);

    [Theory]
    [InlineData("llama")]
    [InlineData("gpt2")]
    public void LoadAdapter_PeftFixture_MergedWeightsMatchReference(string family)
    {
        using var model = AutoCausalLM.FromPretrained(Fixture(family, "base"));
        var expected = SafeTensors.Load(Fixture(family, "expected_merged.safetensors"));

        var lora = LoraModel.LoadAdapter(model, Fixture(family, "adapter"));
        var merged = lora.GetMergedStateDict();

        Assert.Equal(expected.Keys.Order(StringComparer.Ordinal), merged.Keys.Order(StringComparer.Ordinal));
        foreach (var (key, value) in expected)
        {
            Assert.True(torch.allclose(merged[key], value, rtol: 0, atol: 2e-6), $"{key}: max |Δ| {(merged[key] - value).abs().max().item<float>()}");
        }
    }

    [Fact]
    public void LoadAdapter_LlamaFixture_AppliesRankAlphaPatternsAndRslora()
    {
        using var model = AutoCausalLM.FromPretrained(Fixture("llama", "base"));

        var lora = LoraModel.LoadAdapter(model, Fixture("llama", "adapter"));

        // r 4, alpha 8, rsLoRA: 8/√4 = 4; down_proj rank 2: 8/√2; layers.1 v_proj alpha 3: 3/√4 = 1.5.
        Assert.Equal(4.0, lora.Layers["model.layers.0.self_attn.q_proj"].Scaling);
        Assert.Equal(8 / Math.Sqrt(2), lora.Layers["model.layers.0.mlp.down_proj"].Scaling);
        Assert.Equal(4.0, lora.Layers["model.layers.0.self_attn.v_proj"].Scaling);
        Assert.Equal(1.5, lora.Layers["model.layers.1.self_attn.v_proj"].Scaling);
        Assert.Equal(6, lora.Layers.Count);
        Assert.Equal(["lm_head"], lora.ModulesToSavePaths);
    }

    [Theory]
    [InlineData("llama")]
    [InlineData("gpt2")]
    public void SaveAdapter_AfterLoadingPeftFixture_WritesSameTensorsAndConfig(string family)
    {
        using var dir = TestRuntimeFolders.Create();
        using var model = AutoCausalLM.FromPretrained(Fixture(family, "base"));
        var lora = LoraModel.LoadAdapter(model, Fixture(family, "adapter"));

        lora.SaveAdapter(dir.Path);

        var original = SafeTensors.Load(Fixture(family, "adapter", LoraModel.WeightsFileName));
        var written = SafeTensors.Load(Path.Combine(dir.Path, LoraModel.WeightsFileName));
        Assert.Equal(original.Keys.Order(StringComparer.Ordinal), written.Keys.Order(StringComparer.Ordinal));
        Assert.All(original, kv => Assert.True(kv.Value.BitEqual(written[kv.Key]), kv.Key));
        var originalConfig = JsonNode.Parse(File.ReadAllText(Fixture(family, "adapter", LoraConfig.FileName)));
        var writtenConfig = JsonNode.Parse(File.ReadAllText(Path.Combine(dir.Path, LoraConfig.FileName)));
        Assert.True(JsonNode.DeepEquals(originalConfig, writtenConfig), writtenConfig!.ToJsonString());
    }
}
