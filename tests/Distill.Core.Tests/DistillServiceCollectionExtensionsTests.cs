using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using TorchSharp;

namespace Distill.Core.Tests;

public class DistillServiceCollectionExtensionsTests
{
    [Fact]
    public void AddDistill_Resolved_RuntimeReadyAndCpuSelected()
    {
        using var provider = new ServiceCollection().AddLogging().AddDistill(o => o.Device = "cpu").Services.BuildServiceProvider();
        var runtime = provider.GetRequiredService<IDistillRuntime>();
        Assert.Equal(DeviceType.CPU, runtime.Compute.Device.type);
        Assert.NotEqual(Distill.Runtime.NativeRuntimeOutcome.Failed, runtime.NativeRuntime.Outcome);
    }

    [Fact]
    public void AddDistill_CalledTwice_RegistersRuntimeOnceAndAppliesBothConfigurations()
    {
        var services = new ServiceCollection();
        services.AddDistill(o => o.Seed = 7);
        services.AddDistill(o => o.Device = "cpu");
        Assert.Single(services, d => d.ServiceType == typeof(IDistillRuntime));
        using var provider = services.BuildServiceProvider();
        var options = provider.GetRequiredService<IOptions<DistillOptions>>().Value;
        Assert.Equal(7, options.Seed);
        Assert.Equal("cpu", options.Device);
    }

    [Fact]
    public void AddDistill_BadDevice_ValidationNamesTheOption()
    {
        using var provider = new ServiceCollection().AddDistill(o => o.Device = "gpu0").Services.BuildServiceProvider();
        var ex = Assert.Throws<OptionsValidationException>(() => provider.GetRequiredService<IOptions<DistillOptions>>().Value);
        Assert.Contains("DistillOptions.Device", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AddDistill_BadThreadsAndDType_ValidationNamesEachOption()
    {
        using var provider = new ServiceCollection().AddDistill(o => (o.Threads, o.DType) = (0, "int3")).Services.BuildServiceProvider();
        var ex = Assert.Throws<OptionsValidationException>(() => provider.GetRequiredService<IOptions<DistillOptions>>().Value);
        Assert.Equal(2, ex.Failures.Count());
        Assert.Contains(ex.Failures, f => f.Contains("DistillOptions.Threads", StringComparison.Ordinal));
        Assert.Contains(ex.Failures, f => f.Contains("DistillOptions.DType", StringComparison.Ordinal));
    }

    [Fact]
    public void AddDistill_FromConfiguration_BindsSection()
    {
        var config = new ConfigurationBuilder()
            .AddInMemoryCollection(new Dictionary<string, string?> { ["Distill:Device"] = "cpu", ["Distill:DType"] = "bfloat16", ["Distill:Threads"] = "2" })
            .Build();
        using var provider = new ServiceCollection().AddDistill(config.GetSection("Distill")).Services.BuildServiceProvider();
        var options = provider.GetRequiredService<IOptions<DistillOptions>>().Value;
        Assert.Equal("bfloat16", options.DType);
        Assert.Equal(2, options.Threads);
    }

    [Fact]
    public void AddDistill_WithoutLogging_StillResolves()
    {
        using var provider = new ServiceCollection().AddDistill(o => o.Device = "cpu").Services.BuildServiceProvider();
        Assert.NotNull(provider.GetRequiredService<IDistillRuntime>());
        Assert.Null(provider.GetService<ILoggerFactory>());
    }

    [Fact]
    public void AddDistill_Resolved_LogsNativeOutcomeAndThreadsOnceEach()
    {
        var events = new List<(int Id, string Message)>();
        using var provider = new ServiceCollection()
            .AddLogging(b => b.SetMinimumLevel(LogLevel.Information).AddProvider(new ListLoggerProvider(events)))
            .AddDistill(o => o.Device = "cpu").Services.BuildServiceProvider();
        _ = provider.GetRequiredService<IDistillRuntime>();
        Assert.Single(events, e => e.Id == 1001);   // "Native runtime: ..." (it was logged twice)
        var threads = Assert.Single(events, e => e.Id == 1005);
        Assert.Contains("CPU threads: ", threads.Message, StringComparison.Ordinal);
        Assert.Contains("physical cores", threads.Message, StringComparison.Ordinal);
    }

    private sealed class ListLoggerProvider(List<(int Id, string Message)> events) : ILoggerProvider
    {
        public ILogger CreateLogger(string categoryName) => new ListLogger(events);

        public void Dispose()
        {
        }

        private sealed class ListLogger(List<(int Id, string Message)> events) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state)
                where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => true;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            {
                lock (events)
                {
                    events.Add((eventId.Id, formatter(state, exception)));
                }
            }
        }
    }
}
