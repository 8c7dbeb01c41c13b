using Distill.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Distill.Core.Tests.Models;

public class CausalLMForwardTests
{
    private static Tensor Ids() => torch.tensor(new long[] { 3, 9, 1, 4, 7, 5, 2, 8, 6, 0, 11, 12 }).reshape(2, 6);

    [Theory]
    [InlineData("gpt2")]
    [InlineData("llama")]
    [InlineData("mistral")]
    [InlineData("qwen2")]
    public void Forward_PrefillThenCachedSteps_EqualsOneFullForward(string name)
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        using var model = TinyModels.Create(name);
        var ids = Ids();
        var full = model.Forward(new CausalLMInput { InputIds = ids }).Logits!;

        using var cache = model.CreateCache();
        var prefill = model.Forward(new CausalLMInput { InputIds = ids[.., ..3], Cache = cache }).Logits!;
        Assert.Equal(3, cache.Length);
        var chunk = model.Forward(new CausalLMInput { InputIds = ids[.., 3..5], Cache = cache }).Logits!; // 2 new positions at once
        var last = model.Forward(new CausalLMInput { InputIds = ids[.., 5..], Cache = cache }).Logits!;
        Assert.Equal(6, cache.Length);
        ModelParityTests.AssertClose(full, torch.cat([prefill, chunk, last], 1), name, 1e-5);
    }

    [Fact]
    public void Forward_HiddenStatesOnly_SkipsLmHeadAndMatchesLogits()
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        using var model = TinyModels.Create("qwen2");
        var both = model.Forward(new CausalLMInput { InputIds = Ids(), ReturnHiddenStates = true });
        var hiddenOnly = model.Forward(new CausalLMInput { InputIds = Ids(), ComputeLogits = false, ReturnHiddenStates = true });
        Assert.Null(hiddenOnly.Logits);
        Assert.Equal(new long[] { 2, 6, 32 }, hiddenOnly.HiddenStates!.shape);
        // logits = hidden (after the final norm) @ lm_headᵀ.
        ModelParityTests.AssertClose(both.Logits!, hiddenOnly.HiddenStates.matmul(model.LmHeadWeight.t()), "hidden @ W", 1e-5);
    }

    [Fact]
    public void Backward_TiedModel_EveryParameterGetsAGradient()
    {
        using var scope = torch.NewDisposeScope();
        using var model = TinyModels.Create("gpt2");
        model.train();
        var logits = model.Forward(new CausalLMInput { InputIds = Ids() }).Logits!;
        logits.log_softmax(-1).mean().backward();
        foreach (var (name, p) in model.named_parameters())
        {
            Assert.True(p.grad is not null && p.grad.abs().sum().item<float>() > 0, $"{name} has no gradient");
        }
    }

    [Fact]
    public void ModuleTo_Bfloat16_TiedHeadFollowsEmbedding()
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        using var model = TinyModels.Create("qwen2");
        var fp32 = model.Forward(new CausalLMInput { InputIds = Ids() }).Logits!;
        model.to(ScalarType.BFloat16);
        Assert.Equal(ScalarType.BFloat16, model.LmHeadWeight.dtype);
        Assert.Same(model.EmbeddingWeight, model.LmHeadWeight);
        var bf16 = model.Forward(new CausalLMInput { InputIds = Ids() }).Logits!;
        Assert.Equal(ScalarType.BFloat16, bf16.dtype);
        // bf16 keeps ~3 significant digits; logits are O(1).
        ModelParityTests.AssertClose(fp32, bf16, "bf16 vs fp32", 0.15);
    }

    [Fact]
    public void Forward_ManySteps_NoLiveTensorGrowth()
    {
        using var model = TinyModels.Create("llama");
        using var ids = Ids();
        void Step()
        {
            using var scope = torch.NewDisposeScope();
            using var noGrad = torch.no_grad();
            model.Forward(new CausalLMInput { InputIds = ids, ReturnHiddenStates = true });
        }

        Step();
        var before = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        for (var i = 0; i < 10; i++)
        {
            Step();
        }

        Assert.Equal(before, DisposeScopeManager.Statistics.ThreadTotalLiveCount);
    }

    [Fact]
    public void Forward_BadShapes_ThrowClearErrors()
    {
        using var scope = torch.NewDisposeScope();
        using var model = TinyModels.Create("gpt2");
        Assert.Throws<ArgumentException>(() => model.Forward(new CausalLMInput { InputIds = torch.zeros(3, ScalarType.Int64) }));
        var e = Assert.Throws<ArgumentException>(() => model.Forward(new CausalLMInput { InputIds = Ids(), AttentionMask = torch.ones(2, 5, ScalarType.Int64) }));
        Assert.Contains("[2, 6]", e.Message, StringComparison.Ordinal);
        using var wrongCache = new KeyValueCache(5);
        Assert.Throws<ArgumentException>(() => model.Forward(new CausalLMInput { InputIds = Ids(), Cache = wrongCache }));
    }
}
