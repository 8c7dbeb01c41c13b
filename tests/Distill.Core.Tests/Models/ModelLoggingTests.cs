using Distill.Models;
using Distill.Tests.Shared;
using Microsoft.Extensions.Logging;

namespace Distill.Core.Tests.Models;

public class ModelLoggingTests
{
    private sealed class CapturingLogger : ILogger
    {
        public List<(int Id, LogLevel Level, string Message)> Events { get; } = [];

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            Events.Add((eventId.Id, logLevel, formatter(state, exception)));
    }

    [Fact]
    public void SaveAndLoad_WithLogger_LogSavedAndLoadedEvents()
    {
        using var tmp = new TempFolder();
        var logger = new CapturingLogger();
        using var model = TinyModels.Create("gpt2");
        model.SavePretrained(tmp.Path, logger: logger);
        using var loaded = AutoCausalLM.FromPretrained(tmp.Path, logger: logger);
        Assert.Equal([1103, 1101], logger.Events.Select(e => e.Id));
        // wte, wpe + 12 per layer (ln_1, c_attn, attn.c_proj, ln_2, c_fc, mlp.c_proj: weight and bias) × 2 layers + ln_f weight and bias = 28.
        Assert.Contains("28 tensors", logger.Events[1].Message, StringComparison.Ordinal);
    }
}
