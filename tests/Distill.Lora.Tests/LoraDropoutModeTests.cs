using TorchSharp;
using static TorchSharp.torch;

namespace Distill.Lora.Tests;

public sealed class LoraDropoutModeTests
{
    private static Tensor Ids() => torch.tensor(new long[] { 1, 3, 5, 7, 2, 0, 4, 6 }).reshape(2, 4);

    [Fact]
    public void LoadAdapter_Frozen_RunsWithoutDropout_AsPeftFromPretrained()
    {
        // lora_dropout = 0.5 on every linear layer: if dropout stayed active, two forwards of the same ids would differ
        // (and differ from the eval-mode output of the model that saved the adapter).
        torch.manual_seed(31);
        using var dir = TestRuntimeFolders.Create();
        using var model = new TinyLlamaLike();
        using var fresh = model.CloneBase();
        var lora = LoraModel.Inject(model, new LoraConfig { R = 2, LoraDropout = 0.5, TargetModulesPattern = LoraConfig.AllLinear, InitLoraWeights = LoraInitialization.Random });
        lora.SaveAdapter(dir.Path);
        model.eval();
        using var ids = Ids();
        using var expected = model.forward(ids);

        Assert.True(fresh.training); // a new module is in training mode, as in PyTorch
        LoraModel.LoadAdapter(fresh, dir.Path, trainable: false);

        using var a = fresh.forward(ids);
        using var b = fresh.forward(ids);
        Assert.True(a.BitEqual(b));
        Assert.True(a.BitEqual(expected));
    }

    [Fact]
    public void Inject_IntoEvalModel_DropoutFollowsTheLayerItIsAttachedTo()
    {
        torch.manual_seed(32);
        using var model = new TinyLlamaLike();
        model.eval();
        LoraModel.Inject(model, new LoraConfig { R = 2, LoraDropout = 0.5, TargetModulesPattern = LoraConfig.AllLinear, InitLoraWeights = LoraInitialization.Random });
        using var ids = Ids();
        using var a = model.forward(ids);
        using var b = model.forward(ids);
        Assert.True(a.BitEqual(b));

        model.train(); // and back in training mode the adapter's dropout is active again
        using var c = model.forward(ids);
        using var d = model.forward(ids);
        Assert.False(c.BitEqual(d));
    }
}
