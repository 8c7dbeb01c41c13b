using Microsoft.Extensions.Logging;

namespace Distill;

/// <summary>Source-generated log messages of the checkpoint store and metrics file (Core event IDs 122x).</summary>
internal static partial class CheckpointLog
{
    [LoggerMessage(EventId = 1221, Level = LogLevel.Warning, Message = "Checkpoint {Path} is damaged and is skipped: {Problem}")]
    internal static partial void CheckpointDamaged(ILogger logger, string path, string problem);

    [LoggerMessage(EventId = 1222, Level = LogLevel.Warning, Message = "Resuming from {Path}, the newest intact checkpoint ({Skipped} newer damaged one(s) skipped)")]
    internal static partial void FellBack(ILogger logger, string path, int skipped);
}
