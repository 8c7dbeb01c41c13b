using Microsoft.Extensions.Logging;

namespace Distill.Losses;

/// <summary>Log messages of the cross-tokenizer objectives (event IDs 21xx of Distill.Losses' 2xxx block).</summary>
internal static partial class Log
{
    [LoggerMessage(EventId = 2101, Level = LogLevel.Information, Message = "MinED vocabulary map: {MappedTeacher} of {TeacherVocab} teacher ids and {MappedStudent} of {StudentVocab} student ids have a counterpart ({Source})")]
    internal static partial void MinEdVocabularyMap(ILogger logger, int mappedTeacher, int teacherVocab, int mappedStudent, int studentVocab, string source);
}
