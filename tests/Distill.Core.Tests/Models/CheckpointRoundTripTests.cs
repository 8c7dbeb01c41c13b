using System.Text.Json.Nodes;
using Distill.IO;
using Distill.Models;
using Distill.Tests.Shared;
using TorchSharp;
using static TorchSharp.torch;

namespace Distill.Core.Tests.Models;

public class CheckpointRoundTripTests
{
    public static TheoryData<string, ScalarType, bool> Cases()
    {
        var data = new TheoryData<string, ScalarType, bool>();
        foreach (var name in new[] { "gpt2", "llama", "mistral", "qwen2" })
        {
            foreach (var dtype in new[] { ScalarType.Float32, ScalarType.BFloat16 })
            {
                foreach (var sharded in new[] { false, true })
                {
                    data.Add(name, dtype, sharded);
                }
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void SavePretrained_ThenFromPretrained_GivesIdenticalLogits(string name, ScalarType dtype, bool sharded)
    {
        using var tmp = new TempFolder();
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        using var model = TinyModels.Create(name, seed: 11, dtype: dtype);
        var ids = torch.tensor(new long[] { 3, 9, 1, 4, 7, 5, 2, 8, 6, 0 }).reshape(2, 5);
        var before = model.Forward(new CausalLMInput { InputIds = ids }).Logits!;
        Assert.Equal(dtype, before.dtype);

        model.SavePretrained(tmp.Path, maxShardBytes: sharded ? 8_000 : null);
        Assert.Equal(sharded, File.Exists(Path.Combine(tmp.Path, SafeTensors.IndexFileName)));
        Assert.Equal(!sharded, File.Exists(Path.Combine(tmp.Path, SafeTensors.SingleFileName)));
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(tmp.Path, "config.json")))!;
        Assert.Equal(dtype == ScalarType.BFloat16 ? "bfloat16" : "float32", config["torch_dtype"]!.GetValue<string>());
        Assert.Equal(name, config["model_type"]!.GetValue<string>());

        using var loaded = AutoCausalLM.FromPretrained(tmp.Path, dtype);
        Assert.Equal(model.GetType(), loaded.GetType());
        var after = loaded.Forward(new CausalLMInput { InputIds = ids }).Logits!;
        Assert.True(before.eq(after).all().item<bool>(), $"{name} {dtype} sharded={sharded}: logits differ after round trip");
    }

    [Fact]
    public void SavePretrained_TiedModel_StoresNoLmHeadAndTiesOnLoad()
    {
        using var tmp = new TempFolder();
        using var scope = torch.NewDisposeScope();
        using var model = TinyModels.Create("qwen2");
        Assert.True(model.Config.TieWordEmbeddings);
        Assert.Same(model.EmbeddingWeight, model.LmHeadWeight);
        Assert.DoesNotContain("lm_head.weight", model.CheckpointKeys);
        model.SavePretrained(tmp.Path);
        using (var f = SafeTensors.Open(Path.Combine(tmp.Path, SafeTensors.SingleFileName)))
        {
            Assert.DoesNotContain("lm_head.weight", f.Tensors.Keys);
            Assert.Equal("pt", f.Metadata["format"]);
        }

        using var loaded = AutoCausalLM.FromPretrained(tmp.Path);
        Assert.Same(loaded.EmbeddingWeight, loaded.LmHeadWeight);
        // Only one copy among the trainable parameters.
        Assert.Equal(loaded.parameters().Count(), loaded.parameters().Select(p => p.Handle).Distinct().Count());
    }

    [Fact]
    public void SavePretrained_UntiedLlama_StoresLmHead()
    {
        using var tmp = new TempFolder();
        using var model = TinyModels.Create("llama");
        Assert.Contains("lm_head.weight", model.CheckpointKeys);
        Assert.NotSame(model.EmbeddingWeight, model.LmHeadWeight);
    }

    [Fact]
    public void FromPretrained_Bf16Checkpoint_LoadsAsFloat32ByDefault()
    {
        using var tmp = new TempFolder();
        using var scope = torch.NewDisposeScope();
        using var model = TinyModels.Create("llama", dtype: ScalarType.BFloat16);
        model.SavePretrained(tmp.Path);
        using var loaded = AutoCausalLM.FromPretrained(tmp.Path);
        Assert.Equal(ScalarType.Float32, loaded.DType);
        // bf16 -> f32 is exact, so the weights are the same numbers.
        Assert.True(model.EmbeddingWeight.to_type(ScalarType.Float32).eq(loaded.EmbeddingWeight).all().item<bool>());
    }

    [Fact]
    public void FromPretrained_MismatchedCheckpoint_ListsEveryProblemInOneError()
    {
        using var tmp = new TempFolder();
        using var scope = torch.NewDisposeScope();
        using var model = TinyModels.Create("llama");
        model.SavePretrained(tmp.Path);
        var path = Path.Combine(tmp.Path, SafeTensors.SingleFileName);
        var tensors = SafeTensors.Load(path);
        tensors.Remove("model.norm.weight");
        tensors["model.layers.0.self_attn.extra.weight"] = torch.zeros(2);
        tensors["model.layers.1.mlp.up_proj.weight"] = torch.zeros(3, 3);
        SafeTensors.Save(path, tensors);

        var e = Assert.Throws<InvalidDataException>(() => AutoCausalLM.FromPretrained(tmp.Path));
        Assert.Contains("missing keys (1): model.norm.weight", e.Message, StringComparison.Ordinal);
        Assert.Contains("unexpected keys (1): model.layers.0.self_attn.extra.weight", e.Message, StringComparison.Ordinal);
        Assert.Contains("model.layers.1.mlp.up_proj.weight in model.safetensors: checkpoint [3, 3], model [48, 32]", e.Message, StringComparison.Ordinal);
        Assert.Contains(tmp.Path, e.Message, StringComparison.Ordinal);

        // Non-strict loading accepts it (the rest of the weights are loaded).
        using var lenient = AutoCausalLM.FromPretrained(tmp.Path, strict: false);
        Assert.True(lenient.EmbeddingWeight.eq(model.EmbeddingWeight).all().item<bool>());
    }

    [Fact]
    public void FromPretrained_HubStyleGpt2Names_MapsBareKeysAndIgnoresMaskBuffers()
    {
        using var tmp = new TempFolder();
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        using var model = TinyModels.Create("gpt2");
        model.SavePretrained(tmp.Path);
        var path = Path.Combine(tmp.Path, SafeTensors.SingleFileName);
        // Rewrite as the hub's gpt2 checkpoint: no "transformer." prefix, plus the old attn.bias / attn.masked_bias buffers.
        var hub = SafeTensors.Load(path).ToDictionary(kv => kv.Key["transformer.".Length..], kv => kv.Value);
        hub["h.0.attn.bias"] = torch.ones(1, 1, 64, 64).tril();
        hub["h.1.attn.masked_bias"] = torch.tensor(-1e4f);
        SafeTensors.Save(path, hub);

        using var loaded = AutoCausalLM.FromPretrained(tmp.Path);
        var ids = torch.tensor(new long[] { 1, 2, 3 }).reshape(1, 3);
        Assert.True(model.Forward(new CausalLMInput { InputIds = ids }).Logits!.eq(loaded.Forward(new CausalLMInput { InputIds = ids }).Logits!).all().item<bool>());
    }

    [Fact]
    public void SavePretrained_GenerationConfig_IsWrittenBack()
    {
        using var src = new TempFolder();
        using var dst = new TempFolder();
        using var model = TinyModels.Create("gpt2");
        model.SavePretrained(src.Path);
        Assert.False(File.Exists(Path.Combine(src.Path, "generation_config.json")));
        var generation = """{"bos_token_id": 60, "eos_token_id": 60, "do_sample": true}""";
        File.WriteAllText(Path.Combine(src.Path, "generation_config.json"), generation);
        using var loaded = AutoCausalLM.FromPretrained(src.Path);
        loaded.SavePretrained(dst.Path);
        Assert.Equal(generation, File.ReadAllText(Path.Combine(dst.Path, "generation_config.json")));
    }

    [Fact]
    public void FromConfig_SameSeed_SameWeights_DifferentSeed_Different()
    {
        using var scope = torch.NewDisposeScope();
        using var a = AutoCausalLM.FromConfig(TinyModels.Gpt2(), 5);
        using var b = AutoCausalLM.FromConfig(TinyModels.Gpt2(), 5);
        using var c = AutoCausalLM.FromConfig(TinyModels.Gpt2(), 6);
        Assert.True(a.EmbeddingWeight.eq(b.EmbeddingWeight).all().item<bool>());
        Assert.False(a.EmbeddingWeight.eq(c.EmbeddingWeight).all().item<bool>());
        // transformers' init: σ = initializer_range (0.02); LayerNorm weight 1, biases 0.
        var std = a.EmbeddingWeight.std().item<float>();
        Assert.InRange(std, 0.018, 0.022);
        var sd = a.state_dict();
        Assert.True(sd["transformer.ln_f.weight"].eq(1).all().item<bool>());
        Assert.True(sd["transformer.h.0.attn.c_attn.bias"].eq(0).all().item<bool>());
        // c_proj: σ / √(2 · n_layer) = 0.02 / 2 = 0.01.
        Assert.InRange(sd["transformer.h.0.mlp.c_proj.weight"].std().item<float>(), 0.008, 0.012);
    }

    [Fact]
    public void StateDict_Names_MatchTransformers()
    {
        using var gpt2 = TinyModels.Create("gpt2");
        Assert.Equal(
            ["transformer.wte.weight", "transformer.wpe.weight", "transformer.h.0.ln_1.weight", "transformer.h.0.ln_1.bias",
             "transformer.h.0.attn.c_attn.weight", "transformer.h.0.attn.c_attn.bias", "transformer.h.0.attn.c_proj.weight", "transformer.h.0.attn.c_proj.bias",
             "transformer.h.0.ln_2.weight", "transformer.h.0.ln_2.bias", "transformer.h.0.mlp.c_fc.weight", "transformer.h.0.mlp.c_fc.bias",
             "transformer.h.0.mlp.c_proj.weight", "transformer.h.0.mlp.c_proj.bias"],
            gpt2.CheckpointKeys.Take(14));
        Assert.Equal(gpt2.state_dict()["transformer.h.1.attn.c_attn.weight"].shape, new long[] { 32, 96 }); // Conv1D [in, out]

        using var qwen = TinyModels.Create("qwen2");
        var keys = qwen.CheckpointKeys.Where(k => k.StartsWith("model.layers.0.", StringComparison.Ordinal)).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(
            ["model.layers.0.input_layernorm.weight", "model.layers.0.mlp.down_proj.weight", "model.layers.0.mlp.gate_proj.weight",
             "model.layers.0.mlp.up_proj.weight", "model.layers.0.post_attention_layernorm.weight", "model.layers.0.self_attn.k_proj.bias",
             "model.layers.0.self_attn.k_proj.weight", "model.layers.0.self_attn.o_proj.weight", "model.layers.0.self_attn.q_proj.bias",
             "model.layers.0.self_attn.q_proj.weight", "model.layers.0.self_attn.v_proj.bias", "model.layers.0.self_attn.v_proj.weight"],
            keys);
        Assert.Contains("model.embed_tokens.weight", qwen.CheckpointKeys);
        Assert.Contains("model.norm.weight", qwen.CheckpointKeys);
        // Every dense layer is a Projection (LoRA injection point), lm_head included.
        Assert.IsType<LinearProjection>(qwen.LmHead);
        Assert.Equal(2 * 7, qwen.named_modules().Count(m => m.module is Projection && m.name.StartsWith("model.layers.", StringComparison.Ordinal)));
    }
}
