using Microsoft.Extensions.Logging;

namespace Distill.Losses;

/// <summary>Source-generated log messages of Distill.Losses (event IDs 2xxx).</summary>
internal static partial class Log
{
    [LoggerMessage(EventId = 2001, Level = LogLevel.Debug, Message = "Objective '{Name}' created")]
    internal static partial void ObjectiveCreated(ILogger logger, string name);

    [LoggerMessage(EventId = 2002, Level = LogLevel.Warning, Message = "Objective '{Name}': student vocabulary {StudentVocab} and teacher vocabulary {TeacherVocab} differ; using the first {Shared} entries (SliceToSharedVocabulary)")]
    internal static partial void VocabularySliced(ILogger logger, string name, long studentVocab, long teacherVocab, long shared);

    [LoggerMessage(EventId = 2003, Level = LogLevel.Warning, Message = "Objective '{Name}': official-compatibility mode is on ({Behaviour})")]
    internal static partial void CompatibilityMode(ILogger logger, string name, string behaviour);
}
