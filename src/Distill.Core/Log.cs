using Distill.Runtime;
using Microsoft.Extensions.Logging;

namespace Distill;

/// <summary>Source-generated log messages of Distill.Core (event IDs 1xxx).</summary>
internal static partial class Log
{
    [LoggerMessage(EventId = 1001, Level = LogLevel.Information, Message = "Native runtime: {Outcome}. {Message}")]
    internal static partial void NativeOutcome(ILogger logger, NativeRuntimeOutcome outcome, string message);

    [LoggerMessage(EventId = 1002, Level = LogLevel.Debug, Message = "Native runtime: {Action}")]
    internal static partial void NativeAction(ILogger logger, string action);

    [LoggerMessage(EventId = 1003, Level = LogLevel.Error, Message = "Native runtime fix failed: {Message}")]
    internal static partial void NativeFixFailed(ILogger logger, string message);

    [LoggerMessage(EventId = 1004, Level = LogLevel.Information, Message = "Compute: device {Device}, dtype {DType} ({Reason})")]
    internal static partial void ComputeSelected(ILogger logger, string device, string dtype, string reason);
}
