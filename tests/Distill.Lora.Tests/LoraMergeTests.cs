using TorchSharp;
using static TorchSharp.torch;

namespace Distill.Lora.Tests;

public sealed class LoraMergeTests
{
    private static Tensor Ids(int vocab) => torch.tensor(new long[] { 1, 3, 5, 7, 2, 0, 4, 6 }.Select(i => i % vocab).ToArray()).reshape(2, 4);

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Merge_Llama_ForwardEqualsUnmerged(bool rslora)
    {
        torch.manual_seed(11);
        using var model = new TinyLlamaLike();
        var lora = LoraModel.Inject(model, new LoraConfig { R = 3, LoraAlpha = 5, UseRslora = rslora, TargetModulesPattern = LoraConfig.AllLinear, InitLoraWeights = LoraInitialization.Random });
        model.eval();
        using var ids = Ids(model.Vocab);
        using var baseOut = WithAdapters(lora, false, () => model.forward(ids));
        using var unmerged = model.forward(ids);

        lora.Merge();
        using var merged = model.forward(ids);

        Assert.True(lora.IsMerged);
        Assert.False(torch.allclose(unmerged, baseOut, rtol: 0, atol: 1e-3)); // the adapters matter
        Assert.True(torch.allclose(merged, unmerged, rtol: 1e-5, atol: 1e-5), $"max |Δ| {(merged - unmerged).abs().max().item<float>()}");
    }

    [Fact]
    public void Merge_Gpt2Conv1D_ForwardEqualsUnmergedAndWeightIsTransposedDelta()
    {
        torch.manual_seed(12);
        using var model = new TinyGpt2Like();
        var lora = LoraModel.Inject(model, new LoraConfig { R = 2, LoraAlpha = 4, TargetModules = ["c_attn", "mlp.c_proj"], InitLoraWeights = LoraInitialization.Random });
        model.eval();
        using var ids = Ids(13);
        using var unmerged = model.forward(ids);
        var layer = lora.Layers["transformer.h.0.attn.c_attn"];
        using var w0 = layer.Target.Weight.detach().clone();

        lora.Merge();
        using var merged = model.forward(ids);

        // Conv1D weight is [in, out]: W' = W + scaling·(B·A)ᵀ with scaling = 4/2.
        using var expected = w0 + (torch.matmul(layer.B, layer.A) * 2.0).t();
        Assert.True(torch.allclose(layer.Target.Weight, expected, rtol: 0, atol: 1e-6));
        Assert.True(torch.allclose(merged, unmerged, rtol: 1e-5, atol: 1e-5));
        Assert.Equal(["transformer.h.0.attn.c_attn", "transformer.h.0.mlp.c_proj", "transformer.h.1.attn.c_attn", "transformer.h.1.mlp.c_proj"], lora.Layers.Keys);
    }

    [Fact]
    public void Unmerge_KeepOriginal_RestoresWeightsBitForBit()
    {
        torch.manual_seed(13);
        using var model = new TinyLlamaLike();
        var lora = LoraModel.Inject(model, new LoraConfig { R = 3, LoraAlpha = 7, TargetModulesPattern = LoraConfig.AllLinear, InitLoraWeights = LoraInitialization.Random });
        var before = lora.Layers.Values.ToDictionary(l => l.Path, l => l.Target.Weight.detach().clone());
        using var ids = Ids(model.Vocab);
        using var outBefore = model.forward(ids);

        lora.Merge();
        lora.Unmerge();
        using var outAfter = model.forward(ids);

        Assert.False(lora.IsMerged);
        Assert.All(lora.Layers.Values, l => Assert.True(l.Target.Weight.BitEqual(before[l.Path]), l.Path));
        Assert.True(outBefore.BitEqual(outAfter));
    }

    [Fact]
    public void Unmerge_Subtract_RestoresWeightsUpToRounding()
    {
        torch.manual_seed(14);
        using var model = new TinyLlamaLike();
        var lora = LoraModel.Inject(model, new LoraConfig { R = 3, LoraAlpha = 7, TargetModulesPattern = LoraConfig.AllLinear, InitLoraWeights = LoraInitialization.Random });
        var before = lora.Layers.Values.ToDictionary(l => l.Path, l => l.Target.Weight.detach().clone());

        lora.Merge(keepOriginalWeights: false);
        lora.Unmerge();

        Assert.All(lora.Layers.Values, l => Assert.True(torch.allclose(l.Target.Weight, before[l.Path], rtol: 0, atol: 1e-6), l.Path));
    }

    [Fact]
    public void Merge_LoraBias_AddsScaledBias()
    {
        torch.manual_seed(15);
        using var model = new TinyLlamaLike(qkvBias: true);
        var lora = LoraModel.Inject(model, new LoraConfig { R = 2, LoraAlpha = 6, LoraBias = true, TargetModules = ["q_proj"], InitLoraWeights = LoraInitialization.Random });
        var layer = lora.Layers["model.layers.0.self_attn.q_proj"];
        using (torch.no_grad())
        {
            layer.BBias!.uniform_(-1, 1);
        }

        using var b0 = layer.Target.Bias!.detach().clone();
        using var ids = Ids(model.Vocab);
        using var unmerged = model.forward(ids);

        lora.Merge();
        using var merged = model.forward(ids);

        Assert.True(torch.allclose(layer.Target.Bias!, b0 + layer.BBias! * 3.0, rtol: 0, atol: 1e-6)); // scaling 6/2
        Assert.True(torch.allclose(merged, unmerged, rtol: 1e-5, atol: 1e-5));
    }

    [Fact]
    public void AdaptersEnabled_False_GivesBaseOutput()
    {
        torch.manual_seed(16);
        using var model = new TinyLlamaLike();
        using var ids = Ids(model.Vocab);
        using var baseOut = model.forward(ids);
        var lora = LoraModel.Inject(model, new LoraConfig { TargetModules = ["q_proj", "v_proj"], InitLoraWeights = LoraInitialization.Random });

        lora.AdaptersEnabled = false;
        using var disabled = model.forward(ids);
        lora.AdaptersEnabled = true;
        using var enabled = model.forward(ids);

        Assert.True(baseOut.BitEqual(disabled));
        Assert.False(torch.allclose(baseOut, enabled));
    }

    [Fact]
    public void MergeAndUnload_LeavesPlainModelWithSameOutput()
    {
        torch.manual_seed(17);
        using var model = new TinyLlamaLike();
        var keysBefore = model.state_dict().Keys.ToList();
        var lora = LoraModel.Inject(model, new LoraConfig { TargetModules = ["q_proj", "down_proj"], InitLoraWeights = LoraInitialization.Random });
        using var ids = Ids(model.Vocab);
        using var adapted = model.forward(ids);
        var mergedDict = lora.GetMergedStateDict();

        lora.MergeAndUnload();
        using var plain = model.forward(ids);

        Assert.Equal(keysBefore, model.state_dict().Keys);
        Assert.True(torch.allclose(plain, adapted, rtol: 1e-5, atol: 1e-5));

        // GetMergedStateDict (taken before merging, model untouched) equals the merged model's weights under plain names.
        Assert.Equal(keysBefore.Order(StringComparer.Ordinal), mergedDict.Keys.Order(StringComparer.Ordinal));
        foreach (var (k, t) in model.state_dict())
        {
            Assert.True(torch.allclose(t, mergedDict[k], rtol: 0, atol: 1e-6), k);
        }
    }

    [Fact]
    public void Merge_Bfloat16Base_UsesFloat32AdaptersAndCastsDelta()
    {
        torch.manual_seed(18);
        using var model = new TinyLlamaLike();
        model.to(ScalarType.BFloat16);
        var lora = LoraModel.Inject(model, new LoraConfig { TargetModules = ["q_proj"], InitLoraWeights = LoraInitialization.Random });
        var layer = lora.Layers["model.layers.0.self_attn.q_proj"];
        using var w0 = layer.Target.Weight.detach().clone();

        lora.Merge();

        Assert.Equal(ScalarType.Float32, layer.A.dtype); // PEFT autocast_adapter_dtype
        Assert.Equal(ScalarType.BFloat16, layer.Target.Weight.dtype);
        using var expected = (w0.to(ScalarType.Float32) + torch.matmul(layer.B, layer.A) * layer.Scaling).to(ScalarType.BFloat16);
        Assert.True(torch.allclose(layer.Target.Weight.to(ScalarType.Float32), expected.to(ScalarType.Float32), rtol: 1e-2, atol: 1e-2));
        lora.Unmerge();
        Assert.True(layer.Target.Weight.BitEqual(w0)); // bit-exact even in bf16
    }

    private static Tensor WithAdapters(LoraModel lora, bool enabled, Func<Tensor> f)
    {
        lora.AdaptersEnabled = enabled;
        try
        {
            return f();
        }
        finally
        {
            lora.AdaptersEnabled = true;
        }
    }
}
