using Microsoft.Extensions.Logging;

namespace Distill;

/// <summary>Source-generated log messages of the trainer (Core event IDs 12xx).</summary>
internal static partial class Log
{
    [LoggerMessage(EventId = 1201, Level = LogLevel.Information, Message = "Training {Objective}: {TotalSteps} optimizer steps ({StepsPerEpoch}/epoch, {Accumulation} micro-batches each), {Trainable} trainable parameters in {Groups} groups, precision {Precision}, device {Device}")]
    internal static partial void TrainingStarted(ILogger logger, string objective, int totalSteps, int stepsPerEpoch, int accumulation, long trainable, int groups, string precision, string device);

    [LoggerMessage(EventId = 1202, Level = LogLevel.Information, Message = "Step {Step}/{TotalSteps} epoch {Epoch}: loss {Loss:F4}, lr {LearningRate:E3}, grad norm {GradNorm:F3}, {TokensPerSecond:F0} tok/s, ETA {Eta}")]
    internal static partial void StepCompleted(ILogger logger, int step, int totalSteps, int epoch, double loss, double learningRate, double gradNorm, double tokensPerSecond, string eta);

    [LoggerMessage(EventId = 1203, Level = LogLevel.Information, Message = "Evaluation at step {Step}: {Metrics}")]
    internal static partial void Evaluated(ILogger logger, int step, string metrics);

    [LoggerMessage(EventId = 1204, Level = LogLevel.Information, Message = "Checkpoint written: {Path}")]
    internal static partial void CheckpointWritten(ILogger logger, string path);

    [LoggerMessage(EventId = 1205, Level = LogLevel.Debug, Message = "Checkpoint removed by the keep policy: {Path}")]
    internal static partial void CheckpointRemoved(ILogger logger, string path);

    [LoggerMessage(EventId = 1206, Level = LogLevel.Information, Message = "Resumed from {Path} at step {Step} (epoch {Epoch}, batch {Batch})")]
    internal static partial void Resumed(ILogger logger, string path, int step, int epoch, int batch);

    [LoggerMessage(EventId = 1207, Level = LogLevel.Warning, Message = "Training cancelled after step {Step}; checkpoint: {Path}")]
    internal static partial void Cancelled(ILogger logger, int step, string? path);

    [LoggerMessage(EventId = 1208, Level = LogLevel.Information, Message = "Training finished: {Steps} steps, last loss {Loss:F4}, best checkpoint {Best}")]
    internal static partial void TrainingFinished(ILogger logger, int steps, double loss, string? best);

    [LoggerMessage(EventId = 1209, Level = LogLevel.Warning, Message = "Non-finite loss {Loss} at step {Step}; the optimizer step was still applied (TrainingOptions.OnNonFiniteStep = Ignore)")]
    internal static partial void NonFiniteLoss(ILogger logger, double loss, int step);

    [LoggerMessage(EventId = 1210, Level = LogLevel.Warning, Message = "{Message} The optimizer step was skipped (TrainingOptions.OnNonFiniteStep = SkipStep).")]
    internal static partial void NonFiniteStepSkipped(ILogger logger, string message);

    [LoggerMessage(EventId = 1211, Level = LogLevel.Information, Message = "Loaded the best checkpoint at the end of training: {Path} ({Metric} = {Value})")]
    internal static partial void BestModelLoaded(ILogger logger, string path, string metric, double value);

    [LoggerMessage(EventId = 1212, Level = LogLevel.Debug, Message = "Batch preparation: {Transforms} transform(s), teacher {Teacher}, prefetch {Prefetch}")]
    internal static partial void PipelineStarted(ILogger logger, int transforms, string teacher, bool prefetch);
}
