// Placeholder until the trainer, models and data land: loads the native runtime, reports the device and runs one
// forward/backward step of a tiny linear model so the README's first command is honest about what exists.
using Distill;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using TorchSharp;

using var services = new ServiceCollection()
    .AddLogging(b => b.AddSimpleConsole(o => o.SingleLine = true).SetMinimumLevel(LogLevel.Information))
    .AddDistill(o => o.Device = "auto")
    .Services.BuildServiceProvider();

var runtime = services.GetRequiredService<IDistillRuntime>();
Console.WriteLine($"Native runtime: {runtime.NativeRuntime.Outcome} — {runtime.NativeRuntime.Message}");
Console.WriteLine($"Compute: {runtime.Compute.Device} {runtime.Compute.DType}");

using (var scope = torch.NewDisposeScope())
{
    var w = torch.randn(16, 8, requires_grad: true);
    var x = torch.randn(4, 16);
    var loss = x.matmul(w).pow(2).mean();
    loss.backward();
    Console.WriteLine($"Forward/backward OK: loss {loss.item<float>():F4}, grad norm {w.grad!.norm().item<float>():F4}");
}
