using Distill.Runtime;
using TorchSharp;

namespace Distill.Core.Tests.Runtime;

public class ComputeSelectorTests
{
    [Fact]
    public void Select_Auto_PicksCudaOnlyWhenAvailable()
    {
        var context = ComputeSelector.Select("auto", "auto");
        if (torch.cuda.is_available())
        {
            Assert.Equal(DeviceType.CUDA, context.Device.type);
            Assert.Equal(torch.ScalarType.BFloat16, context.DType);
        }
        else
        {
            Assert.Equal(DeviceType.CPU, context.Device.type);
            Assert.Equal(torch.ScalarType.Float32, context.DType);
        }
    }

    [Theory]
    [InlineData("float32", torch.ScalarType.Float32)]
    [InlineData("FP32", torch.ScalarType.Float32)]
    [InlineData("bf16", torch.ScalarType.BFloat16)]
    [InlineData("bfloat16", torch.ScalarType.BFloat16)]
    [InlineData("float16", torch.ScalarType.Float16)]
    public void ResolveDType_KnownNames_Map(string name, torch.ScalarType expected) =>
        Assert.Equal(expected, ComputeSelector.ResolveDType(name, torch.CPU).DType);

    [Fact]
    public void ResolveDevice_UnknownName_ThrowsListingChoices()
    {
        var ex = Assert.Throws<ArgumentException>(() => ComputeSelector.ResolveDevice("tpu"));
        Assert.Contains("auto, cpu, cuda or cuda:N", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ResolveDevice_CudaWithoutGpu_ThrowsClearly()
    {
        if (torch.cuda.is_available())
        {
            Assert.Equal(DeviceType.CUDA, ComputeSelector.ResolveDevice("cuda").Device.type);
            return;
        }

        var ex = Assert.Throws<InvalidOperationException>(() => ComputeSelector.ResolveDevice("cuda:0"));
        Assert.Contains("CUDA is not available", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("cpu", true)]
    [InlineData("cuda:3", true)]
    [InlineData("cuda:x", false)]
    [InlineData("gpu", false)]
    public void ValidateDeviceString_Cases(string device, bool valid) =>
        Assert.Equal(valid, ComputeSelector.ValidateDeviceString(device) is null);
}
