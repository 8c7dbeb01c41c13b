using Distill.Tests.Shared;

namespace Distill.Lora.Tests;

internal static class TestRuntimeFolders
{
    public static TempFolder Create() => TestRuntime.CreateTempFolder();
}

internal static class TensorExtensions
{
    /// <summary>Same shape and dtype, and every element equal (torch.equal; TorchSharp's equal() is elementwise).</summary>
    public static bool BitEqual(this TorchSharp.torch.Tensor a, TorchSharp.torch.Tensor b) =>
        a.shape.SequenceEqual(b.shape) && a.dtype == b.dtype && a.eq(b).all().item<bool>();
}
