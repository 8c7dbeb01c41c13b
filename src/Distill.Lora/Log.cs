using Microsoft.Extensions.Logging;

namespace Distill.Lora;

/// <summary>Source-generated log messages of Distill.Lora (event IDs 3xxx).</summary>
internal static partial class Log
{
    [LoggerMessage(EventId = 3001, Level = LogLevel.Information, Message = "LoRA: adapted {Layers} layers (r {Rank}, alpha {Alpha}, scaling {Scaling}); trainable parameters {Trainable} of {Total}")]
    internal static partial void Injected(ILogger logger, int layers, int rank, double alpha, double scaling, long trainable, long total);

    [LoggerMessage(EventId = 3002, Level = LogLevel.Warning, Message = "LoRA: fan_in_fan_out was {Configured} but '{Module}' stores its weight {Layout}; using {Used} (as PEFT does)")]
    internal static partial void FanInFanOutCorrected(ILogger logger, bool configured, string module, string layout, bool used);

    [LoggerMessage(EventId = 3003, Level = LogLevel.Information, Message = "LoRA: loaded adapter '{Path}' ({Tensors} tensors, {Layers} layers, trainable {Trainable})")]
    internal static partial void Loaded(ILogger logger, string path, int tensors, int layers, bool trainable);

    [LoggerMessage(EventId = 3004, Level = LogLevel.Information, Message = "LoRA: saved adapter to '{Path}' ({Tensors} tensors)")]
    internal static partial void Saved(ILogger logger, string path, int tensors);

    [LoggerMessage(EventId = 3005, Level = LogLevel.Debug, Message = "LoRA: merged {Layers} layers (original weights kept: {Kept})")]
    internal static partial void Merged(ILogger logger, int layers, bool kept);

    [LoggerMessage(EventId = 3006, Level = LogLevel.Debug, Message = "LoRA: unmerged {Layers} layers")]
    internal static partial void Unmerged(ILogger logger, int layers);
}
