using Distill.Runtime;
using TorchSharp;

namespace Distill.Core.Tests.Runtime;

public class NativeRuntimeTests
{
    [Fact]
    public void EnsureNativeRuntime_OnThisMachine_TensorOpRuns()
    {
        var report = DistillRuntime.EnsureNativeRuntime();
        Assert.NotEqual(NativeRuntimeOutcome.Failed, report.Outcome);
        using var scope = torch.NewDisposeScope();
        var a = torch.arange(6, dtype: torch.float32).reshape(2, 3);
        var b = torch.ones(3, 2);
        var c = torch.matmul(a, b); // [[3,3],[12,12]]
        Assert.Equal(new float[] { 3, 3, 12, 12 }, c.data<float>().ToArray());
        Assert.True(a.requires_grad == false);
    }
}
