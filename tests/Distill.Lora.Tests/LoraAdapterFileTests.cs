using System.Text.Json.Nodes;
using Distill.IO;
using TorchSharp;
using static TorchSharp.torch;

namespace Distill.Lora.Tests;

public sealed class LoraAdapterFileTests
{
    private const string Q0 = "model.layers.0.self_attn.q_proj";

    private static Tensor Ids(int vocab) => torch.tensor(new long[] { 1, 3, 5, 7, 2, 0, 4, 6 }.Select(i => i % vocab).ToArray()).reshape(2, 4);

    [Fact]
    public void SaveAdapter_WritesPeftKeysShapesAndConfig()
    {
        using var dir = TestRuntimeFolders.Create();
        using var model = new TinyLlamaLike(hidden: 6, kvDim: 4);
        var lora = LoraModel.Inject(model, new LoraConfig { R = 2, LoraAlpha = 4, TargetModules = ["q_proj", "v_proj"], BaseModelNameOrPath = "tiny" });

        lora.SaveAdapter(dir.Path);

        Assert.Equal(["adapter_config.json", "adapter_model.safetensors"], Directory.GetFiles(dir.Path).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        var tensors = SafeTensors.Load(Path.Combine(dir.Path, LoraModel.WeightsFileName));
        Assert.Equal(8, tensors.Count);
        Assert.Equal([2L, 6L], tensors[$"base_model.model.{Q0}.lora_A.weight"].shape); // [r, in]
        Assert.Equal([6L, 2L], tensors[$"base_model.model.{Q0}.lora_B.weight"].shape); // [out, r]
        Assert.Equal([4L, 2L], tensors["base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight"].shape);
        using (var f = SafeTensors.Open(Path.Combine(dir.Path, LoraModel.WeightsFileName)))
        {
            Assert.Equal("pt", f.Metadata["format"]);
        }

        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(dir.Path, LoraConfig.FileName)))!;
        Assert.Equal("LORA", (string?)config["peft_type"]);
        Assert.Equal(2, (int)config["r"]!);
        Assert.Equal("tiny", (string?)config["base_model_name_or_path"]);
    }

    [Fact]
    public void SaveThenLoad_FreshBase_IdenticalTensorsAndOutputs()
    {
        torch.manual_seed(21);
        using var dir = TestRuntimeFolders.Create();
        using var model = new TinyLlamaLike(qkvBias: true);
        using var fresh = model.CloneBase();
        var config = new LoraConfig
        {
            R = 3, LoraAlpha = 5, LoraDropout = 0.1, TargetModulesPattern = LoraConfig.AllLinear, Bias = LoraBiasMode.LoraOnly,
            ModulesToSave = ["lm_head"], InitLoraWeights = LoraInitialization.Random,
        };
        var trained = LoraModel.Inject(model, config);
        using (torch.no_grad())
        {
            // Make the trained extras differ from the fresh base.
            foreach (var (_, p) in trained.TrainableParameters())
            {
                p.add_(torch.rand_like(p));
            }
        }

        trained.SaveAdapter(dir.Path);
        var loaded = LoraModel.LoadAdapter(fresh, dir.Path, trainable: true);

        model.eval();
        fresh.eval();
        using var ids = Ids(model.Vocab);
        using var a = model.forward(ids);
        using var b = fresh.forward(ids);
        Assert.True(a.BitEqual(b));
        var sa = model.state_dict();
        var sb = fresh.state_dict();
        Assert.Equal(sa.Keys, sb.Keys);
        Assert.All(sa, kv => Assert.True(kv.Value.BitEqual(sb[kv.Key]), kv.Key));
        Assert.Equal(trained.Config.ToJson(), loaded.Config.ToJson());
        Assert.Equal(trained.CountTrainableParameters(), loaded.CountTrainableParameters());
    }

    [Fact]
    public void SaveThenLoad_Gpt2Conv1D_IdenticalOutputs()
    {
        torch.manual_seed(22);
        using var dir = TestRuntimeFolders.Create();
        using var model = new TinyGpt2Like();
        var lora = LoraModel.Inject(model, new LoraConfig { R = 2, TargetModules = ["c_attn", "c_fc"], InitLoraWeights = LoraInitialization.Random });
        lora.SaveAdapter(dir.Path);
        using var ids = Ids(13);
        using var adapted = model.forward(ids);
        lora.Unload();
        using var plain = model.forward(ids);

        var loaded = LoraModel.LoadAdapter(model, dir.Path);
        using var reloaded = model.forward(ids);

        Assert.False(adapted.BitEqual(plain));
        Assert.True(adapted.BitEqual(reloaded));
        Assert.True(loaded.Config.FanInFanOut);
        Assert.True((bool)JsonNode.Parse(File.ReadAllText(Path.Combine(dir.Path, LoraConfig.FileName)))!["fan_in_fan_out"]!);
    }

    [Fact]
    public void LoadAdapter_HandWrittenPeftAdapter_MergedWeightIsWPlusScaledBA()
    {
        // A PEFT adapter for q_proj of layer 0 only, written by hand with PEFT's names and layout:
        // r = 1, lora_alpha = 2 → scaling 2; A [r, in] = [1, 0, 0, 0, 0, 0]; B [out, r] = [1, 2, 0, 0, 0, -1]ᵀ.
        // B·A is the outer product: column 0 = B, other columns 0. So W' = W with column 0 += 2·B = [2, 4, 0, 0, 0, -2].
        using var dir = TestRuntimeFolders.Create();
        File.WriteAllText(Path.Combine(dir.Path, "adapter_config.json"), """
            {"base_model_name_or_path": null, "bias": "none", "fan_in_fan_out": false, "inference_mode": true,
             "init_lora_weights": true, "lora_alpha": 2, "lora_dropout": 0.0, "modules_to_save": null, "peft_type": "LORA",
             "r": 1, "target_modules": ["model.layers.0.self_attn.q_proj"], "task_type": "CAUSAL_LM", "use_rslora": false}
            """);
        using (var a = torch.tensor(new float[] { 1, 0, 0, 0, 0, 0 }).reshape(1, 6))
        using (var b = torch.tensor(new float[] { 1, 2, 0, 0, 0, -1 }).reshape(6, 1))
        {
            SafeTensors.Save(Path.Combine(dir.Path, "adapter_model.safetensors"), new Dictionary<string, Tensor>
            {
                ["base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"] = a,
                ["base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight"] = b,
            });
        }

        using var model = new TinyLlamaLike(hidden: 6);
        var lora = LoraModel.LoadAdapter(model, dir.Path);
        var layer = Assert.Single(lora.Layers.Values);
        using var w = layer.Target.Weight.detach().clone();

        lora.Merge();

        using var expected = w.clone();
        using (torch.no_grad())
        {
            expected[.., 0].add_(torch.tensor(new float[] { 2, 4, 0, 0, 0, -2 }));
        }

        Assert.Equal(Q0, layer.Path);
        Assert.Equal(2.0, layer.Scaling);
        Assert.True(layer.Target.Weight.BitEqual(expected)); // adding 0 and exact small integers: no rounding
    }

    [Fact]
    public void LoadAdapter_HandWrittenPeftConv1DAdapter_MergedWeightIsTransposed()
    {
        // GPT-2 c_attn (Conv1D, weight [in = 4, out = 12]); PEFT's A is still [r, in] and B [out, r]; merge adds (s·B·A)ᵀ.
        // r = 1, alpha = 3 → s = 3; A = [0, 1, 0, 0]; B = e_5 (1 at out index 5). (B·A)ᵀ has a single 1 at [in 1, out 5],
        // so W'[1, 5] = W[1, 5] + 3 and nothing else changes.
        using var dir = TestRuntimeFolders.Create();
        var config = new LoraConfig { R = 1, LoraAlpha = 3, FanInFanOut = true, TargetModules = [@"transformer.h.1.attn.c_attn"] };
        config.Save(Path.Combine(dir.Path, LoraConfig.FileName));
        using (var a = torch.tensor(new float[] { 0, 1, 0, 0 }).reshape(1, 4))
        using (var b = torch.zeros(12, 1))
        {
            b[5, 0] = torch.tensor(1f);
            SafeTensors.Save(Path.Combine(dir.Path, LoraModel.WeightsFileName), new Dictionary<string, Tensor>
            {
                ["base_model.model.transformer.h.1.attn.c_attn.lora_A.weight"] = a,
                ["base_model.model.transformer.h.1.attn.c_attn.lora_B.weight"] = b,
            });
        }

        using var model = new TinyGpt2Like(hidden: 4);
        var lora = LoraModel.LoadAdapter(model, dir.Path);
        var weight = lora.Layers["transformer.h.1.attn.c_attn"].Target.Weight;
        using var w = weight.detach().clone();

        lora.Merge();

        using var diff = weight - w;
        Assert.Equal(3f, diff[1, 5].item<float>(), 5);
        diff[1, 5] = torch.tensor(0f);
        Assert.Equal(0f, diff.abs().max().item<float>());
    }

    [Fact]
    public void LoadAdapter_Teacher_EverythingFrozenAndMergeAndUnloadKeepsOutput()
    {
        torch.manual_seed(23);
        using var dir = TestRuntimeFolders.Create();
        using var student = new TinyLlamaLike();
        using var teacher = student.CloneBase();
        LoraModel.Inject(student, new LoraConfig { R = 4, TargetModules = ["q_proj", "v_proj"], InitLoraWeights = LoraInitialization.Random }).SaveAdapter(dir.Path);
        using var ids = Ids(student.Vocab);
        using var expected = student.forward(ids);

        var lora = LoraModel.LoadAdapter(teacher, dir.Path); // trainable: false
        Assert.Equal(0, lora.CountTrainableParameters());
        Assert.All(teacher.parameters(), p => Assert.False(p.requires_grad));

        lora.MergeAndUnload(); // DSKD merges its LoRA teachers before distillation
        using var merged = teacher.forward(ids);

        Assert.DoesNotContain(teacher.state_dict().Keys, k => k.Contains("lora", StringComparison.Ordinal));
        Assert.True(torch.allclose(merged, expected, rtol: 1e-5, atol: 1e-5));
    }

    [Fact]
    public void LoadAdapter_MissingKey_ThrowsNamingFileAndKey()
    {
        using var dir = WriteAdapter(drop: "base_model.model.model.layers.1.self_attn.q_proj.lora_B.weight");
        using var model = new TinyLlamaLike();

        var e = Assert.Throws<InvalidDataException>(() => LoraModel.LoadAdapter(model, dir.Path));

        Assert.Contains("adapter_model.safetensors", e.Message, StringComparison.Ordinal);
        Assert.Contains("missing key(s) 'base_model.model.model.layers.1.self_attn.q_proj.lora_B.weight'", e.Message, StringComparison.Ordinal);
        Assert.All(model.named_modules(), m => Assert.Null((m.module as Models.Projection)?.Adapter)); // nothing left behind
        Assert.All(model.parameters(), p => Assert.True(p.requires_grad)); // flags as before the failed load
    }

    [Fact]
    public void LoadAdapter_RankMismatch_ThrowsNamingKeyShapesAndRanks()
    {
        using var dir = WriteAdapter(configR: 4); // tensors have r = 2, the config says 4
        using var model = new TinyLlamaLike();

        var e = Assert.Throws<InvalidDataException>(() => LoraModel.LoadAdapter(model, dir.Path));

        Assert.Contains("'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight' has shape [2, 6], expected [4, 6]", e.Message, StringComparison.Ordinal);
        Assert.Contains("rank mismatch: the tensor has rank 2, adapter_config.json gives r = 4", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void LoadAdapter_TargetModuleAbsent_ThrowsNamingTargets()
    {
        using var dir = WriteAdapter(targets: ["query_key_value"]);
        using var model = new TinyLlamaLike();

        var e = Assert.Throws<InvalidOperationException>(() => LoraModel.LoadAdapter(model, dir.Path));

        Assert.Contains("adapter_config.json", e.Message, StringComparison.Ordinal);
        Assert.Contains("[query_key_value] not found in the base model", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void LoadAdapter_KeyForModuleAbsentFromModel_ThrowsUnexpectedKey()
    {
        // The adapter was trained on a 3-layer model; this one has 2 layers.
        using var dir = WriteAdapter(extraKey: "base_model.model.model.layers.2.self_attn.q_proj.lora_A.weight");
        using var model = new TinyLlamaLike(layers: 2);

        var e = Assert.Throws<InvalidDataException>(() => LoraModel.LoadAdapter(model, dir.Path));

        Assert.Contains("unexpected key(s) 'base_model.model.model.layers.2.self_attn.q_proj.lora_A.weight'", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void LoadAdapter_NoWeightsFile_ThrowsFileNotFound()
    {
        using var dir = TestRuntimeFolders.Create();
        new LoraConfig { TargetModules = ["q_proj"] }.Save(Path.Combine(dir.Path, LoraConfig.FileName));
        File.WriteAllBytes(Path.Combine(dir.Path, "adapter_model.bin"), [0]);
        using var model = new TinyLlamaLike();

        var e = Assert.Throws<FileNotFoundException>(() => LoraModel.LoadAdapter(model, dir.Path));

        Assert.Contains("adapter_model.bin", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void LoadAdapter_BiasAllWithPeftBaseLayerKeys_LoadsBiases()
    {
        torch.manual_seed(24);
        using var dir = TestRuntimeFolders.Create();
        using var model = new TinyLlamaLike(qkvBias: true);
        using var fresh = model.CloneBase();
        var lora = LoraModel.Inject(model, new LoraConfig { R = 2, TargetModules = ["q_proj"], Bias = LoraBiasMode.All });
        using (torch.no_grad())
        {
            foreach (var (_, p) in lora.TrainableParameters())
            {
                p.add_(1.0);
            }
        }

        var keys = lora.GetAdapterStateDict().Keys.ToList();
        lora.SaveAdapter(dir.Path);
        LoraModel.LoadAdapter(fresh, dir.Path);

        // PEFT wraps adapted layers, so their bias is "<path>.base_layer.bias"; other biases keep "<path>.bias".
        Assert.Contains($"base_model.model.{Q0}.base_layer.bias", keys);
        Assert.Contains("base_model.model.model.layers.0.self_attn.k_proj.bias", keys);
        Assert.Contains("base_model.model.model.norm.bias", keys);
        Assert.True(model.state_dict()["model.layers.0.self_attn.k_proj.bias"].BitEqual(fresh.state_dict()["model.layers.0.self_attn.k_proj.bias"]));
        Assert.True(model.state_dict()[$"{Q0}.bias"].BitEqual(fresh.state_dict()[$"{Q0}.bias"]));
    }

    /// <summary>A q_proj adapter (r = 2) for <see cref="TinyLlamaLike"/>, written as PEFT would, with optional defects.</summary>
    private static Distill.Tests.Shared.TempFolder WriteAdapter(int configR = 2, string[]? targets = null, string? drop = null, string? extraKey = null)
    {
        var dir = TestRuntimeFolders.Create();
        new LoraConfig { R = configR, LoraAlpha = 4, TargetModules = targets ?? ["q_proj"] }.Save(Path.Combine(dir.Path, LoraConfig.FileName));
        var tensors = new Dictionary<string, Tensor>();
        for (var layer = 0; layer < 2; layer++)
        {
            tensors[$"base_model.model.model.layers.{layer}.self_attn.q_proj.lora_A.weight"] = torch.randn(2, 6);
            tensors[$"base_model.model.model.layers.{layer}.self_attn.q_proj.lora_B.weight"] = torch.randn(6, 2);
        }

        if (drop is not null)
        {
            Assert.True(tensors.Remove(drop));
        }

        if (extraKey is not null)
        {
            tensors[extraKey] = torch.randn(2, 6);
        }

        SafeTensors.Save(Path.Combine(dir.Path, LoraModel.WeightsFileName), tensors);
        return dir;
    }
}
