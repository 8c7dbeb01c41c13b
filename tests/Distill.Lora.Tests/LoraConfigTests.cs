using System.Text.Json.Nodes;

namespace Distill.Lora.Tests;

public sealed class LoraConfigTests
{
    // What PEFT 0.13 writes for get_peft_model(llama, LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05,
    // target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")) + save_pretrained: keys sorted, the set written as a list.
    internal const string PeftWrittenConfig = """
        {
          "alpha_pattern": {},
          "auto_mapping": null,
          "base_model_name_or_path": "TinyLlama/TinyLlama-1.1B-intermediate-step-1431k-3T",
          "bias": "none",
          "fan_in_fan_out": false,
          "inference_mode": true,
          "init_lora_weights": true,
          "layer_replication": null,
          "layers_pattern": null,
          "layers_to_transform": null,
          "loftq_config": {},
          "lora_alpha": 32,
          "lora_dropout": 0.05,
          "megatron_config": null,
          "megatron_core": "megatron.core",
          "modules_to_save": null,
          "peft_type": "LORA",
          "r": 16,
          "rank_pattern": {},
          "revision": null,
          "target_modules": [
            "v_proj",
            "q_proj"
          ],
          "task_type": "CAUSAL_LM",
          "use_dora": false,
          "use_rslora": false,
          "peft_version": "0.13.2"
        }
        """;

    [Fact]
    public void FromJson_PeftWrittenConfig_ReadsEveryField()
    {
        var c = LoraConfig.FromJson(PeftWrittenConfig);

        Assert.Equal(16, c.R);
        Assert.Equal(32, c.LoraAlpha);
        Assert.Equal(0.05, c.LoraDropout);
        Assert.Equal(["v_proj", "q_proj"], c.TargetModules);
        Assert.Null(c.TargetModulesPattern);
        Assert.Equal(LoraBiasMode.None, c.Bias);
        Assert.False(c.FanInFanOut);
        Assert.False(c.UseRslora);
        Assert.Null(c.ModulesToSave);
        Assert.Equal("CAUSAL_LM", c.TaskType);
        Assert.True(c.InferenceMode);
        Assert.Equal("TinyLlama/TinyLlama-1.1B-intermediate-step-1431k-3T", c.BaseModelNameOrPath);
        Assert.Equal(2.0, c.ScalingFor(c.R, c.LoraAlpha)); // 32 / 16
    }

    [Fact]
    public void ToJson_AfterFromJson_PreservesEveryKeyAndValue()
    {
        var original = JsonNode.Parse(PeftWrittenConfig)!.AsObject();

        var written = JsonNode.Parse(LoraConfig.FromJson(PeftWrittenConfig).ToJson())!.AsObject();

        // Same key set (peft_version and megatron_core included) and same values.
        Assert.Equal(original.Select(kv => kv.Key).Order(StringComparer.Ordinal), written.Select(kv => kv.Key).Order(StringComparer.Ordinal));
        foreach (var (key, value) in original)
        {
            Assert.True(JsonNode.DeepEquals(value, written[key]), $"{key}: {value?.ToJsonString()} vs {written[key]?.ToJsonString()}");
        }
    }

    [Fact]
    public void ToJson_Default_WritesSortedPeftKeys()
    {
        var json = JsonNode.Parse(new LoraConfig { TargetModules = ["q_proj"] }.ToJson())!.AsObject();

        var keys = json.Select(kv => kv.Key).ToList();
        Assert.Equal(keys.Order(StringComparer.Ordinal), keys);
        Assert.Equal("LORA", (string?)json["peft_type"]);
        Assert.Equal(8, (int)json["r"]!);
        Assert.Equal(8, (int)json["lora_alpha"]!); // an integral alpha is written as an int, as PEFT's int field
        Assert.Equal("none", (string?)json["bias"]);
        Assert.True((bool)json["init_lora_weights"]!);
    }

    [Fact]
    public void FromJson_StringTargetsAndPatterns_MapToPatternProperties()
    {
        var c = LoraConfig.FromJson("""
            {"peft_type": "LORA", "r": 4, "lora_alpha": 8.5, "target_modules": "all-linear", "bias": "lora_only",
             "rank_pattern": {"q_proj": 2}, "alpha_pattern": {"v_proj": 3}, "layers_to_transform": 1, "layers_pattern": "layers",
             "modules_to_save": ["lm_head"], "init_lora_weights": "gaussian", "use_rslora": true, "lora_bias": true}
            """);

        Assert.Equal(LoraConfig.AllLinear, c.TargetModulesPattern);
        Assert.Null(c.TargetModules);
        Assert.Equal(LoraBiasMode.LoraOnly, c.Bias);
        Assert.Equal(2, c.RankPattern["q_proj"]);
        Assert.Equal(3, c.AlphaPattern["v_proj"]);
        Assert.Equal([1], c.LayersToTransform);
        Assert.Equal(["layers"], c.LayersPattern);
        Assert.Equal(["lm_head"], c.ModulesToSave);
        Assert.Equal(LoraInitialization.Gaussian, c.InitLoraWeights);
        Assert.True(c.UseRslora);
        Assert.True(c.LoraBias);
        Assert.Equal(8.5 / 2.0, c.ScalingFor(4, 8.5)); // rsLoRA: alpha / sqrt(4)
    }

    [Theory]
    [InlineData("""{"r": "eight"}""", "'r' must be a number")]
    [InlineData("""{"r": 2.5}""", "'r' must be an integer")]
    [InlineData("""{"bias": "some"}""", "'bias' is 'some'")]
    [InlineData("""{"peft_type": "IA3"}""", "'peft_type' is 'IA3'")]
    [InlineData("""{"target_modules": [1]}""", "'target_modules[0]' must be a string")]
    [InlineData("""[1, 2]""", "not a JSON object")]
    [InlineData("""{"r": """, "invalid JSON")]
    public void FromJson_BadValue_ThrowsNamingSourceAndKey(string json, string expected)
    {
        var e = Assert.Throws<InvalidDataException>(() => LoraConfig.FromJson(json, "/adapters/x/adapter_config.json"));

        Assert.Contains("/adapters/x/adapter_config.json", e.Message, StringComparison.Ordinal);
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void SaveLoad_File_RoundTripsAndWritesNoTemporaryFiles()
    {
        using var dir = TestRuntimeFolders.Create();
        var c = new LoraConfig { R = 3, LoraAlpha = 6, TargetModulesPattern = @".*\.q_proj", Bias = LoraBiasMode.All, ModulesToSave = ["lm_head"] };
        c.RankPattern["layers.1.self_attn.q_proj"] = 5;

        c.Save(dir.Path);
        var back = LoraConfig.Load(dir.Path);

        Assert.Equal([LoraConfig.FileName], Directory.GetFiles(dir.Path).Select(Path.GetFileName));
        Assert.Equal(c.ToJson(), back.ToJson());
    }

    [Fact]
    public void Load_MissingFile_ThrowsFileNotFoundNamingPath()
    {
        using var dir = TestRuntimeFolders.Create();

        var e = Assert.Throws<FileNotFoundException>(() => LoraConfig.Load(dir.Path));

        Assert.Contains(Path.Combine(dir.Path, LoraConfig.FileName), e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(0, 0.0, "r) must be positive")]
    [InlineData(8, 1.0, "lora_dropout) must be in [0, 1)")]
    public void Validate_BadValues_ReportsProperty(int r, double dropout, string expected)
    {
        var failures = LoraConfigValidator.Failures(new LoraConfig { R = r, LoraDropout = dropout, TargetModules = ["q_proj"] });

        Assert.Contains(failures, f => f.Contains(expected, StringComparison.Ordinal));
    }

    [Fact]
    public void Validate_ListAndPatternBoth_Fails()
    {
        var failures = LoraConfigValidator.Failures(new LoraConfig { TargetModules = ["q_proj"], TargetModulesPattern = ".*" });

        Assert.Single(failures);
    }

    [Fact]
    public void ThrowIfUnsupported_DoraOrLayerReplication_Throws()
    {
        var dora = LoraConfig.FromJson("""{"use_dora": true}""", "a.json");
        var replication = LoraConfig.FromJson("""{"layer_replication": [[0, 2]]}""", "b.json");
        var harmless = LoraConfig.FromJson("""{"layer_replication": null, "megatron_config": null}""", "c.json");

        Assert.Contains("use_dora", Assert.Throws<NotSupportedException>(() => dora.ThrowIfUnsupported("a.json")).Message, StringComparison.Ordinal);
        Assert.Contains("layer_replication", Assert.Throws<NotSupportedException>(() => replication.ThrowIfUnsupported("b.json")).Message, StringComparison.Ordinal);
        harmless.ThrowIfUnsupported("c.json");
    }
}
