using Distill.IO;
using Distill.Tests.Shared;
using TorchSharp;
using static TorchSharp.torch;
using PyBridgeSafetensors = TorchSharp.PyBridge.Safetensors;

namespace Distill.Core.Tests.IO;

/// <summary>Cross-checks against an independent implementation, TorchSharp.PyBridge 1.4.4's safetensors reader/writer.</summary>
public class SafeTensorsInteropTests
{
    private static Dictionary<string, Tensor> Sample() => new()
    {
        ["model.embed_tokens.weight"] = torch.randn(7, 4),
        ["model.norm.weight"] = torch.randn(4).to_type(ScalarType.BFloat16),
        ["h"] = torch.randn(3).to_type(ScalarType.Float16),
        ["ids"] = torch.arange(5, dtype: ScalarType.Int64),
        ["flags"] = torch.tensor(new[] { true, false }),
    };

    [Fact]
    public void Save_ReadByPyBridge_SameTensors()
    {
        using var tmp = new TempFolder();
        using var scope = torch.NewDisposeScope();
        var tensors = Sample();
        var path = Path.Combine(tmp.Path, "ours.safetensors");
        SafeTensors.Save(path, tensors, new Dictionary<string, string> { ["format"] = "pt" });
        var theirs = PyBridgeSafetensors.LoadStateDict(path);
        Assert.Equal(tensors.Keys.Order(), theirs.Keys.Order());
        foreach (var (name, t) in tensors)
        {
            Assert.Equal(t.dtype, theirs[name].dtype);
            Assert.True(t.eq(theirs[name]).all().item<bool>(), name);
        }
    }

    [Fact]
    public void Load_FileWrittenByPyBridge_SameTensors()
    {
        using var tmp = new TempFolder();
        using var scope = torch.NewDisposeScope();
        var tensors = Sample();
        var path = Path.Combine(tmp.Path, "theirs.safetensors");
        using (var fs = File.Create(path))
        {
            PyBridgeSafetensors.SaveStateDict(fs, tensors, leaveOpen: true); // unpadded header: our reader must still accept it
        }

        var ours = SafeTensors.Load(path);
        foreach (var (name, t) in tensors)
        {
            Assert.True(t.eq(ours[name]).all().item<bool>(), name);
        }
    }
}
