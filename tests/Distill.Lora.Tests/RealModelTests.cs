using Distill.Models;
using Microsoft.Extensions.DependencyInjection;
using TorchSharp;
using static TorchSharp.torch;

namespace Distill.Lora.Tests;

/// <summary>LoRA on Distill's real (tiny, random) Llama and GPT-2 built with <see cref="AutoCausalLM.FromConfig"/>.</summary>
public sealed class RealModelTests
{
    private static LlamaConfig TinyLlama() => new()
    {
        ModelType = "llama", VocabSize = 32, HiddenSize = 16, NumHiddenLayers = 2, NumAttentionHeads = 4, NumKeyValueHeads = 2,
        IntermediateSize = 24, MaxPositionEmbeddings = 64,
    };

    private static Gpt2Config TinyGpt2() => new()
    {
        ModelType = "gpt2", VocabSize = 40, HiddenSize = 16, NumHiddenLayers = 2, NumAttentionHeads = 2, MaxPositionEmbeddings = 32,
    };

    private static Tensor Logits(CausalLM model)
    {
        using var ids = torch.tensor(new long[] { 1, 5, 9, 3, 7, 2, 4, 8, 6, 0 }).reshape(2, 5);
        return model.Forward(new CausalLMInput { InputIds = ids }).Logits!;
    }

    [Fact]
    public void Inject_LlamaWithoutTargets_UsesPeftDefaultQvProjAndFormulaCount()
    {
        using var model = AutoCausalLM.FromConfig(TinyLlama(), seed: 1);

        var lora = LoraModel.Inject(model, new LoraConfig { R = 4 });

        // PEFT default for llama: q_proj, v_proj. q: 16→16, r·(16+16) = 128; v: 16→8 (2 KV heads · head_dim 4), r·(16+8) = 96.
        // 2 layers: 2·224 = 448.
        Assert.Equal(["model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.v_proj", "model.layers.1.self_attn.q_proj", "model.layers.1.self_attn.v_proj"], lora.Layers.Keys);
        Assert.Equal(448, lora.CountTrainableParameters());
        Assert.Equal(["q_proj", "v_proj"], lora.Config.TargetModules);
    }

    [Fact]
    public void Inject_Gpt2AllLinear_AdaptsConv1DAndSkipsTiedLmHead()
    {
        using var model = AutoCausalLM.FromConfig(TinyGpt2(), seed: 2);

        var lora = LoraModel.Inject(model, new LoraConfig { R = 2, TargetModulesPattern = LoraConfig.AllLinear });

        Assert.Equal(
            ["transformer.h.0.attn.c_attn", "transformer.h.0.attn.c_proj", "transformer.h.0.mlp.c_fc", "transformer.h.0.mlp.c_proj",
             "transformer.h.1.attn.c_attn", "transformer.h.1.attn.c_proj", "transformer.h.1.mlp.c_fc", "transformer.h.1.mlp.c_proj"],
            lora.Layers.Keys);

        // Per block: c_attn 16→48: 2·64 = 128; attn.c_proj 16→16: 64; c_fc 16→64: 160; mlp.c_proj 64→16: 160 → 512; 2 blocks → 1024.
        Assert.Equal(1024, lora.CountTrainableParameters());
        Assert.True(lora.Config.FanInFanOut);
    }

    [Theory]
    [InlineData("llama")]
    [InlineData("gpt2")]
    public void Merge_RealModel_LogitsEqualUnmerged(string family)
    {
        torch.manual_seed(31);
        using var model = family == "llama" ? AutoCausalLM.FromConfig(TinyLlama(), seed: 3) : AutoCausalLM.FromConfig(TinyGpt2(), seed: 3);
        using var baseLogits = Logits(model);
        var lora = LoraModel.Inject(model, new LoraConfig { R = 4, LoraAlpha = 16, TargetModulesPattern = LoraConfig.AllLinear, InitLoraWeights = LoraInitialization.Random });
        using var unmerged = Logits(model);

        lora.Merge();
        using var merged = Logits(model);
        lora.Unmerge();
        using var restored = Logits(model);

        Assert.False(torch.allclose(unmerged, baseLogits, rtol: 0, atol: 1e-3));
        Assert.True(torch.allclose(merged, unmerged, rtol: 1e-4, atol: 1e-5), $"max |Δ| {(merged - unmerged).abs().max().item<float>()}");
        Assert.True(restored.BitEqual(unmerged));
    }

    [Fact]
    public void SaveLoad_RealLlama_FreshBaseGivesIdenticalLogits()
    {
        torch.manual_seed(32);
        using var dir = TestRuntimeFolders.Create();
        using var student = AutoCausalLM.FromConfig(TinyLlama(), seed: 4);
        using var fresh = AutoCausalLM.FromConfig(TinyLlama(), seed: 4);
        var lora = LoraModel.Inject(student, new LoraConfig { R = 8, LoraAlpha = 16, TargetModules = ["q_proj", "k_proj", "v_proj", "o_proj"], InitLoraWeights = LoraInitialization.Random });
        using var expected = Logits(student);

        lora.SaveAdapter(dir.Path);
        var loaded = LoraModel.LoadAdapter(fresh, dir.Path);
        using var actual = Logits(fresh);

        Assert.True(actual.BitEqual(expected));
        Assert.Equal(8, loaded.Layers.Count);
    }

    [Fact]
    public void SaveMergedPretrained_ReloadedPlainModelMatchesAdaptedModel()
    {
        torch.manual_seed(33);
        using var dir = TestRuntimeFolders.Create();
        using var model = AutoCausalLM.FromConfig(TinyLlama(), seed: 5);
        var lora = LoraModel.Inject(model, new LoraConfig { R = 4, TargetModulesPattern = LoraConfig.AllLinear, InitLoraWeights = LoraInitialization.Random });
        using var adapted = Logits(model);

        lora.SaveMergedPretrained(dir.Path);
        using var reloaded = AutoCausalLM.FromPretrained(dir.Path);
        using var plain = Logits(reloaded);
        using var stillAdapted = Logits(model);

        Assert.False(lora.IsMerged);
        Assert.True(stillAdapted.BitEqual(adapted)); // the in-memory model is unchanged
        Assert.DoesNotContain(IO.SafeTensors.Load(Path.Combine(dir.Path, IO.SafeTensors.SingleFileName)).Keys, k => k.Contains("lora", StringComparison.Ordinal));
        Assert.True(torch.allclose(plain, adapted, rtol: 1e-4, atol: 1e-5), $"max |Δ| {(plain - adapted).abs().max().item<float>()}");
    }

    [Fact]
    public void Merge_TiedLmHeadTarget_ThrowsAndModulesToSaveTiedHeadThrows()
    {
        using var model = AutoCausalLM.FromConfig(TinyGpt2(), seed: 6);
        var lora = LoraModel.Inject(model, new LoraConfig { R = 2, TargetModules = ["lm_head"] });

        var e = Assert.Throws<InvalidOperationException>(() => lora.Merge());
        Assert.Contains("'lm_head'", e.Message, StringComparison.Ordinal);
        lora.Unload();

        var e2 = Assert.Throws<InvalidOperationException>(() => LoraModel.Inject(model, new LoraConfig { TargetModules = ["c_attn"], ModulesToSave = ["lm_head"] }));
        Assert.Contains("'lm_head' has no parameters of its own", e2.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Training_TenSteps_OnlyAdaptersChangeAndNoTensorLeak()
    {
        torch.manual_seed(34);
        using var model = AutoCausalLM.FromConfig(TinyLlama(), seed: 7);
        var lora = LoraModel.Inject(model, new LoraConfig { R = 4, LoraAlpha = 8, LoraDropout = 0.1 });
        var before = model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());
        model.train();
        using var optimizer = torch.optim.AdamW(lora.TrainableParameters().Select(p => p.Parameter), lr: 1e-2);
        using var ids = torch.tensor(new long[] { 1, 5, 9, 3, 7, 2, 4, 8, 6, 0 }).reshape(2, 5);
        long live = 0;
        for (var step = 0; step < 10; step++)
        {
            using var scope = torch.NewDisposeScope();
            optimizer.zero_grad();
            var logits = model.Forward(new CausalLMInput { InputIds = ids }).Logits!;
            var loss = nn.functional.cross_entropy(logits[.., ..^1].reshape(-1, 32), ids[.., 1..].reshape(-1));
            loss.backward();
            optimizer.step();
            if (step == 2)
            {
                live = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
            }
            else if (step > 2)
            {
                Assert.Equal(live, DisposeScopeManager.Statistics.ThreadTotalLiveCount);
            }
        }

        foreach (var (key, value) in model.state_dict())
        {
            var changed = !value.BitEqual(before[key]);
            Assert.Equal(key.Contains(".lora_", StringComparison.Ordinal), changed);
        }
    }

    [Fact]
    public void GetMergedStateDict_CausalLM_HasCheckpointKeysOnly()
    {
        torch.manual_seed(35);
        using var model = AutoCausalLM.FromConfig(TinyLlama(), seed: 8);
        var lora = LoraModel.Inject(model, new LoraConfig { R = 2, TargetModules = ["o_proj"], InitLoraWeights = LoraInitialization.Random });
        var layer = lora.Layers["model.layers.1.self_attn.o_proj"];

        var merged = lora.GetMergedStateDict();

        Assert.Equal(model.CheckpointKeys.Order(StringComparer.Ordinal), merged.Keys.Order(StringComparer.Ordinal));
        using var expected = layer.Target.Weight + torch.matmul(layer.B, layer.A) * layer.Scaling;
        Assert.True(torch.allclose(merged["model.layers.1.self_attn.o_proj.weight"], expected, rtol: 0, atol: 1e-6));
    }

    [Fact]
    public void LoraInjector_FromDi_InjectsConfiguredAdapter()
    {
        using var provider = new ServiceCollection()
            .AddDistill()
            .AddDistillLora(c => { c.R = 2; c.LoraAlpha = 4; })
            .Services.BuildServiceProvider();
        using var model = AutoCausalLM.FromConfig(TinyGpt2(), seed: 9);

        var lora = provider.GetRequiredService<ILoraInjector>().Inject(model);

        // No targets configured → PEFT's GPT-2 default c_attn (16→48): 2 blocks · 2·(16+48) = 256.
        Assert.Equal(["transformer.h.0.attn.c_attn", "transformer.h.1.attn.c_attn"], lora.Layers.Keys);
        Assert.Equal(256, lora.CountTrainableParameters());
        Assert.Equal(2.0, lora.Layers.Values.First().Scaling);
    }
}
