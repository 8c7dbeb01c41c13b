using System.Diagnostics;
using Distill.Tests.Shared;

namespace Distill.Lora.Tests;

/// <summary>adapter_config.json: ranks checked before allocation, pattern timeouts named, strict JSON.</summary>
public sealed class AdapterHardeningTests
{
    private static string WriteAdapter(string dir, string configJson)
    {
        File.WriteAllText(Path.Combine(dir, LoraConfig.FileName), configJson);
        using var w = TorchSharp.torch.zeros(1);
        IO.SafeTensors.Save(Path.Combine(dir, "adapter_model.safetensors"), new Dictionary<string, TorchSharp.torch.Tensor> { ["unused"] = w });
        return Path.Combine(dir, LoraConfig.FileName);
    }

    [Fact]
    public void LoadAdapter_HugeRank_RejectedByValidationBeforeAllocating()
    {
        using var tmp = new TempFolder();
        var file = WriteAdapter(tmp.Path, """{"peft_type": "LORA", "r": 16777216, "lora_alpha": 8, "target_modules": ["q_proj"]}""");
        using var model = new TinyLlamaLike(hidden: 6, kvDim: 4, intermediate: 10, layers: 2);
        var sw = Stopwatch.StartNew();
        var e = Assert.ThrowsAny<Exception>(() => LoraModel.LoadAdapter(model, tmp.Path));
        Assert.True(e is ArgumentException or InvalidDataException, e.ToString());
        Assert.Contains(file, e.Message, StringComparison.Ordinal);
        Assert.Contains("16777216", e.Message, StringComparison.Ordinal);
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(5));
    }

    [Fact]
    public void LoadAdapter_RankImplausibleForLayerShapes_RejectedBeforeAllocating()
    {
        using var tmp = new TempFolder();
        var file = WriteAdapter(tmp.Path, """{"peft_type": "LORA", "r": 65536, "lora_alpha": 8, "target_modules": ["q_proj", "v_proj"]}""");
        using var model = new TinyLlamaLike(hidden: 6, kvDim: 4, intermediate: 10, layers: 2);
        var e = Assert.Throws<InvalidDataException>(() => LoraModel.LoadAdapter(model, tmp.Path));
        Assert.Contains(file, e.Message, StringComparison.Ordinal);
        Assert.Contains("r = 65536", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(model.named_modules(), m => m.module is LoraLayer);
    }

    [Fact]
    public void LoadAdapter_CatastrophicTargetPattern_TimesOutNamingFileAndPattern()
    {
        using var tmp = new TempFolder();
        const string pattern = "((.|..)*)*!";
        var file = WriteAdapter(tmp.Path, $$"""{"peft_type": "LORA", "r": 2, "lora_alpha": 4, "target_modules": "{{pattern}}"}""");
        using var model = new TinyLlamaLike(hidden: 6, kvDim: 4, intermediate: 10, layers: 2);
        var e = Assert.Throws<InvalidDataException>(() => LoraModel.LoadAdapter(model, tmp.Path));
        Assert.Contains(file, e.Message, StringComparison.Ordinal);
        Assert.Contains(pattern, e.Message, StringComparison.Ordinal);
        Assert.Contains("timeout", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_RepeatedKey_ThrowsNamingFileAndKey()
    {
        using var tmp = new TempFolder();
        var file = Path.Combine(tmp.Path, LoraConfig.FileName);
        File.WriteAllText(file, """{"r": 4, "lora_alpha": 8, "r": 8, "target_modules": ["q_proj"]}""");
        var e = Assert.Throws<InvalidDataException>(() => LoraConfig.Load(file));
        Assert.Contains(file, e.Message, StringComparison.Ordinal);
        Assert.Contains("'r' appears twice", e.Message, StringComparison.Ordinal);
    }
}
