using Distill.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Distill.Lora.Tests;

public sealed class LoraInjectionTests
{
    private static Tensor Ids(int vocab) => torch.tensor(new long[] { 1, 3, 5, 7, 2, 0, 4, 6 }.Select(i => i % vocab).ToArray()).reshape(2, 4);

    [Fact]
    public void Inject_QvProj_TrainableCountEqualsPeftFormula()
    {
        using var model = new TinyLlamaLike(hidden: 6, kvDim: 4, intermediate: 10, layers: 2);
        var lora = LoraModel.Inject(model, new LoraConfig { R = 4, LoraAlpha = 8, TargetModules = ["q_proj", "v_proj"] });

        // PEFT: each adapted layer adds r·(in + out). q_proj 6→6: 4·12 = 48; v_proj 6→4: 4·10 = 40; 2 layers → 2·88 = 176.
        Assert.Equal(176, lora.CountTrainableParameters());
        Assert.Equal(["model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.v_proj", "model.layers.1.self_attn.q_proj", "model.layers.1.self_attn.v_proj"], lora.Layers.Keys);
        Assert.All(lora.TrainableParameters(), p => Assert.Matches(@"\.lora_[AB]\.weight$", p.Name));
    }

    [Fact]
    public void Inject_AllLinear_AdaptsEveryProjectionButLmHead()
    {
        using var model = new TinyLlamaLike(hidden: 6, kvDim: 4, intermediate: 10, layers: 2);
        var lora = LoraModel.Inject(model, new LoraConfig { R = 4, TargetModulesPattern = LoraConfig.AllLinear });

        // Per layer: q 4·(6+6)=48, k 4·(6+4)=40, v 40, o 4·(4+6)=40, gate 4·(6+10)=64, up 64, down 4·(10+6)=64 → 360; 2 layers → 720.
        Assert.Equal(720, lora.CountTrainableParameters());
        Assert.Equal(14, lora.Layers.Count);
        Assert.DoesNotContain("lm_head", lora.Layers.Keys);

        // As PEFT, the saved config lists the expanded names instead of "all-linear".
        Assert.Null(lora.Config.TargetModulesPattern);
        Assert.Equal(14, lora.Config.TargetModules!.Count);
    }

    [Fact]
    public void Inject_ModulesToSaveAndBias_CountsFollowPeft()
    {
        using var m1 = new TinyLlamaLike(hidden: 6, kvDim: 4, intermediate: 10, layers: 2, qkvBias: true);
        using var m2 = new TinyLlamaLike(hidden: 6, kvDim: 4, intermediate: 10, layers: 2, qkvBias: true);
        using var m3 = new TinyLlamaLike(hidden: 6, kvDim: 4, intermediate: 10, layers: 2, qkvBias: true);

        var all = LoraModel.Inject(m1, new LoraConfig { R = 4, TargetModules = ["q_proj", "v_proj"], Bias = LoraBiasMode.All });
        var loraOnly = LoraModel.Inject(m2, new LoraConfig { R = 4, TargetModules = ["q_proj", "v_proj"], Bias = LoraBiasMode.LoraOnly });
        var saved = LoraModel.Inject(m3, new LoraConfig { R = 4, TargetModules = ["q_proj", "v_proj"], ModulesToSave = ["lm_head"] });

        // Adapters 176 (see above). bias=all: every *.bias: q 6 + k 4 + v 4 per layer (28) + the final norm's bias 6 → 34.
        Assert.Equal(176 + 34, all.CountTrainableParameters());

        // bias=lora_only: biases of the adapted layers only: (q 6 + v 4)·2 = 20.
        Assert.Equal(176 + 20, loraOnly.CountTrainableParameters());

        // modules_to_save lm_head trains in full: 11·6 = 66.
        Assert.Equal(176 + 66, saved.CountTrainableParameters());
        Assert.Equal(["lm_head"], saved.ModulesToSavePaths);
    }

    [Fact]
    public void Inject_Gpt2Conv1D_UsesPeftLayoutAndSetsFanInFanOut()
    {
        using var model = new TinyGpt2Like(hidden: 4, layers: 2);
        var lora = LoraModel.Inject(model, new LoraConfig { R = 2, TargetModules = ["c_attn"] });

        // c_attn is Conv1D 4→12 (weight [4, 12]); LoRA A is [r, in] = [2, 4] and B [out, r] = [12, 2] as for nn.Linear.
        var layer = lora.Layers["transformer.h.0.attn.c_attn"];
        Assert.Equal([2L, 4L], layer.A.shape);
        Assert.Equal([12L, 2L], layer.B.shape);
        Assert.True(lora.Config.FanInFanOut); // corrected as PEFT does for Conv1D
        Assert.Equal(2 * 2 * (4 + 12), lora.CountTrainableParameters());
    }

    [Fact]
    public void Inject_Default_InitialisesAsPeftAndKeepsOutput()
    {
        torch.manual_seed(1);
        using var model = new TinyLlamaLike(hidden: 6, kvDim: 4, intermediate: 10, layers: 2);
        using var ids = Ids(model.Vocab);
        using var before = model.forward(ids);

        var lora = LoraModel.Inject(model, new LoraConfig { R = 4, TargetModulesPattern = LoraConfig.AllLinear });
        using var after = model.forward(ids);

        foreach (var layer in lora.Layers.Values)
        {
            // kaiming_uniform_(a=√5): gain √(2/(1+5)), bound = gain·√(3/fan_in) = 1/√in.
            var bound = 1.0 / Math.Sqrt(layer.Target.InFeatures);
            Assert.True(layer.A.abs().max().item<float>() <= bound, layer.Path);
            Assert.True(layer.A.abs().max().item<float>() > 0, layer.Path);
            Assert.Equal(0f, layer.B.abs().max().item<float>());
            Assert.Equal(2.0, layer.Scaling); // default lora_alpha 8 / r 4
        }

        Assert.True(before.BitEqual(after)); // B = 0: the adapted model starts as the base model
    }

    [Fact]
    public void Inject_BaseFrozen_OnlyAdapterGetsGradients()
    {
        using var model = new TinyLlamaLike();
        var lora = LoraModel.Inject(model, new LoraConfig { TargetModules = ["q_proj"], InitLoraWeights = LoraInitialization.Random });
        using var ids = Ids(model.Vocab);

        model.forward(ids).sum().backward();

        foreach (var (name, p) in model.named_parameters())
        {
            var isAdapter = name.Contains(".lora_", StringComparison.Ordinal);
            Assert.Equal(isAdapter, p.requires_grad);
            Assert.Equal(isAdapter, p.grad is not null);
        }
    }

    [Fact]
    public void Inject_StateDictNames_FollowPeftModuleNames()
    {
        using var model = new TinyLlamaLike(layers: 1);
        LoraModel.Inject(model, new LoraConfig { R = 2, TargetModules = ["q_proj"], LoraDropout = 0.1 });

        var keys = model.state_dict().Keys.Where(k => k.Contains("lora", StringComparison.Ordinal)).Order(StringComparer.Ordinal);

        Assert.Equal(["model.layers.0.self_attn.q_proj.lora_A.weight", "model.layers.0.self_attn.q_proj.lora_B.weight"], keys);
    }

    [Fact]
    public void Inject_RsloraAndPatterns_SetScaling()
    {
        using var model = new TinyLlamaLike(layers: 2);
        var c = new LoraConfig { R = 4, LoraAlpha = 8, UseRslora = true, TargetModules = ["q_proj"] };
        c.RankPattern[@"layers\.1\.self_attn\.q_proj"] = 16;

        var lora = LoraModel.Inject(model, c);

        Assert.Equal(8 / Math.Sqrt(4), lora.Layers["model.layers.0.self_attn.q_proj"].Scaling);
        Assert.Equal(8 / Math.Sqrt(16), lora.Layers["model.layers.1.self_attn.q_proj"].Scaling);
        Assert.Equal(16, lora.Layers["model.layers.1.self_attn.q_proj"].Rank);
    }

    [Fact]
    public void Inject_NoMatchingModule_ThrowsNamingTargets()
    {
        using var model = new TinyLlamaLike();

        var e = Assert.Throws<InvalidOperationException>(() => LoraModel.Inject(model, new LoraConfig { TargetModules = ["query_key_value"] }));

        Assert.Contains("[query_key_value] not found in the base model", e.Message, StringComparison.Ordinal);
        Assert.Contains("model.layers.0.self_attn.q_proj", e.Message, StringComparison.Ordinal); // lists what exists
    }

    [Fact]
    public void Inject_NonDenseTarget_ThrowsNotSupported()
    {
        using var model = new TinyLlamaLike();

        var e = Assert.Throws<NotSupportedException>(() => LoraModel.Inject(model, new LoraConfig { TargetModules = ["embed_tokens"] }));

        Assert.Contains("'model.embed_tokens'", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Inject_Twice_Throws()
    {
        using var model = new TinyLlamaLike();
        LoraModel.Inject(model, new LoraConfig { TargetModules = ["q_proj"] });

        Assert.Throws<InvalidOperationException>(() => LoraModel.Inject(model, new LoraConfig { TargetModules = ["v_proj"] }));
    }

    [Fact]
    public void Unload_RemovesAdaptersAndRestoresStateDict()
    {
        using var model = new TinyLlamaLike();
        var keysBefore = model.state_dict().Keys.ToList();
        var lora = LoraModel.Inject(model, new LoraConfig { TargetModules = ["q_proj"], InitLoraWeights = LoraInitialization.Random });
        using var ids = Ids(model.Vocab);

        lora.Unload();

        Assert.Equal(keysBefore, model.state_dict().Keys);
        Assert.All(model.named_modules(), m => Assert.Null((m.module as Projection)?.Adapter));
        Assert.Throws<InvalidOperationException>(() => lora.Merge());
    }

    [Fact]
    public void Dropout_EvalMode_IsInactiveAndTrainModeIsActive()
    {
        torch.manual_seed(3);
        using var model = new TinyLlamaLike();
        LoraModel.Inject(model, new LoraConfig { TargetModules = ["q_proj", "v_proj"], LoraDropout = 0.5, InitLoraWeights = LoraInitialization.Random });
        using var ids = Ids(model.Vocab);

        model.eval();
        using var e1 = model.forward(ids);
        using var e2 = model.forward(ids);
        model.train();
        using var t1 = model.forward(ids);

        Assert.True(e1.BitEqual(e2));
        Assert.False(torch.allclose(e1, t1));
    }

    [Fact]
    public void Inject_ModuleRegisteredUnderTwoNames_AdaptedOnceUnderFirstName()
    {
        using var model = new AliasedProjection();

        var lora = LoraModel.Inject(model, new LoraConfig { R = 2, TargetModules = ["q_proj", "alias"] });

        // PyTorch's named_modules() yields a shared module once, under its first name; PEFT adapts it once.
        Assert.Equal(["block.q_proj"], lora.Layers.Keys);
        Assert.Equal(2 * (3 + 5), lora.CountTrainableParameters());
        Assert.Single(lora.GetAdapterStateDict().Keys, k => k.EndsWith("lora_A.weight", StringComparison.Ordinal));
    }

    private sealed class AliasedProjection : nn.Module<Tensor, Tensor>
    {
        private readonly Block block = new();

        public AliasedProjection()
            : base(nameof(AliasedProjection)) => RegisterComponents();

        public override Tensor forward(Tensor x) => block.forward(x);

        private sealed class Block : nn.Module<Tensor, Tensor>
        {
            private readonly LinearProjection q = new(3, 5);

            public Block()
                : base(nameof(Block))
            {
                register_module("q_proj", q);
                register_module("alias", q);
            }

            public override Tensor forward(Tensor x) => q.forward(x);
        }
    }

    [Fact]
    public void ModelTo_AfterInject_MovesAdaptersAndKeepsThemTrainable()
    {
        torch.manual_seed(5);
        using var model = new TinyLlamaLike();
        var lora = LoraModel.Inject(model, new LoraConfig { TargetModules = ["q_proj"], InitLoraWeights = LoraInitialization.Random });
        using var ids = Ids(model.Vocab);
        using var before = model.forward(ids);

        model.to(ScalarType.Float64);
        using var after = model.forward(ids);

        var layer = lora.Layers["model.layers.0.self_attn.q_proj"];
        Assert.Equal(ScalarType.Float64, layer.A.dtype);
        Assert.True(layer.A.requires_grad);
        Assert.Equal(2 * 8 * (6 + 6), lora.CountTrainableParameters());
        Assert.True(torch.allclose(after.to(ScalarType.Float32), before, rtol: 1e-5, atol: 1e-5));
    }
}
