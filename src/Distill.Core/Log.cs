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

    [LoggerMessage(EventId = 1005, Level = LogLevel.Information, Message = "CPU threads: {Threads} intra-op ({Reason}); {PhysicalCores} physical cores, {LogicalProcessors} logical processors")]
    internal static partial void Threads(ILogger logger, int threads, string reason, int physicalCores, int logicalProcessors);

    [LoggerMessage(EventId = 1101, Level = LogLevel.Information, Message = "Loaded {ModelType} from {Dir}: {Tensors} tensors, {Parameters} parameters, {DType} on {Device} in {Seconds:F2} s")]
    internal static partial void ModelLoaded(ILogger logger, string modelType, string dir, int tensors, long parameters, string dtype, string device, double seconds);

    [LoggerMessage(EventId = 1102, Level = LogLevel.Warning, Message = "Non-strict load of {Dir}: {Problems}")]
    internal static partial void ModelLoadProblems(ILogger logger, string dir, string problems);

    [LoggerMessage(EventId = 1104, Level = LogLevel.Warning, Message = "Model {Dir} has non-finite weights (NaN or infinity); its outputs will be NaN: {Tensors}")]
    internal static partial void NonFiniteWeights(ILogger logger, string dir, string tensors);

    [LoggerMessage(EventId = 1103, Level = LogLevel.Information, Message = "Saved {ModelType} to {Dir}: {Files} weight file(s), {Bytes} bytes")]
    internal static partial void ModelSaved(ILogger logger, string modelType, string dir, int files, long bytes);
}
