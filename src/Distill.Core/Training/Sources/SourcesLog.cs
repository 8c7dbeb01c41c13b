using Microsoft.Extensions.Logging;

namespace Distill;

/// <summary>Source-generated log messages of the sample sources (Core event IDs 13xx).</summary>
internal static partial class Log
{
    [LoggerMessage(EventId = 1301, Level = LogLevel.Information, Message = "Sample source {Source}: {Batches} micro-batches, {GeneratedBatches} generated ({Rows} rows, mean length {MeanLength:F1}), {Truncated} truncated, {Empty} empty, {Dropped} dropped, {Skipped} prompts skipped, {Seconds:F1} s generating")]
    internal static partial void SampleSourceProgress(ILogger logger, string source, long batches, long generatedBatches, long rows, double meanLength, long truncated, long empty, long dropped, long skipped, double seconds);

    [LoggerMessage(EventId = 1302, Level = LogLevel.Information, Message = "Sample source {Source} created: student request ratio {RequestRatio}, student token ratio {TokenRatio}, max new tokens {MaxNewTokens}, {Decoding}")]
    internal static partial void SampleSourceCreated(ILogger logger, string source, double requestRatio, double tokenRatio, int maxNewTokens, string decoding);
}
