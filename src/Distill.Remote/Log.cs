using Microsoft.Extensions.Logging;

namespace Distill.Remote;

/// <summary>Source-generated log messages of Distill.Remote (event ids 6xxx). The API key is never an argument.</summary>
internal static partial class Log
{
    [LoggerMessage(EventId = 6001, Level = LogLevel.Information, Message = "Remote teacher {Endpoint}: model {Model}, k = {K}, {Batch} sequences per request, {Concurrency} in flight, API key {KeyState}")]
    internal static partial void RemoteConfigured(ILogger logger, Uri endpoint, string model, int k, int batch, int concurrency, string keyState);

    [LoggerMessage(EventId = 6002, Level = LogLevel.Information, Message = "Remote teacher tokenizer agrees with the local tokenizer on {Probes} probe strings")]
    internal static partial void TokenizerAgrees(ILogger logger, int probes);

    [LoggerMessage(EventId = 6003, Level = LogLevel.Debug, Message = "Remote teacher request: {Sequences} sequences, {Positions} positions in {Milliseconds:F0} ms")]
    internal static partial void RequestDone(ILogger logger, int sequences, long positions, double milliseconds);

    [LoggerMessage(EventId = 6004, Level = LogLevel.Warning, Message = "Remote teacher attempt {Attempt} failed ({Outcome}); retrying in {Delay}")]
    internal static partial void Retrying(ILogger logger, int attempt, string outcome, TimeSpan delay);
}
