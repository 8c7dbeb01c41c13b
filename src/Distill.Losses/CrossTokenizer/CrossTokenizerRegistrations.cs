using Distill.Data;
using Distill.Data.Alignment;
using Microsoft.Extensions.Logging;

namespace Distill.Losses.CrossTokenizer;

/// <summary>Creation of <c>min_ed</c> by name (its declaration is in <see cref="DistillObjectives"/>): tokenizers and vocabulary map from files.</summary>
internal static class CrossTokenizerRegistrations
{
    /// <summary>Creates <c>min_ed</c> from its options: tokenizers from their folders, the map from its file or built from the tokenizers.</summary>
    internal static MinEdObjective CreateMinEd(MinEdOptions options, ILogger logger)
    {
        if (string.IsNullOrWhiteSpace(options.StudentTokenizerPath) || string.IsNullOrWhiteSpace(options.TeacherTokenizerPath))
        {
            throw new InvalidOperationException($"Objective '{MinEdObjective.RegisteredName}' created by name needs {nameof(CrossTokenizerOptions)}.{nameof(CrossTokenizerOptions.MinEd)}.{nameof(MinEdOptions.StudentTokenizerPath)} and .{nameof(MinEdOptions.TeacherTokenizerPath)} (tokenizer folders); or construct MinEdObjective directly with a VocabularyMap.");
        }

        var student = HfTokenizer.FromPretrained(options.StudentTokenizerPath, logger);
        var teacher = HfTokenizer.FromPretrained(options.TeacherTokenizerPath, logger);
        VocabularyMap map;
        string source;
        if (string.IsNullOrWhiteSpace(options.VocabularyMapPath))
        {
            map = VocabularyMap.Build(student, teacher);
            source = "built from the tokenizers";
        }
        else
        {
            map = VocabularyMap.Load(options.VocabularyMapPath, teacher.VocabSize, student.VocabSize);
            source = options.VocabularyMapPath;
        }

        Log.MinEdVocabularyMap(logger, map.MappedTeacherCount, map.TeacherVocabSize, map.MappedStudentCount, map.StudentVocabSize, source);
        return new MinEdObjective(options, map, student, teacher);
    }
}
