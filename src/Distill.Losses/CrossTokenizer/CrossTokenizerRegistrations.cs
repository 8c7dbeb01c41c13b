using Distill.Data;
using Distill.Data.Alignment;
using Distill.Losses.DualSpace;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Distill.Losses.CrossTokenizer;

/// <summary>The named registrations of the dual-space and cross-tokenizer objectives (served by the package's <see cref="IObjectiveFactory"/>).</summary>
internal static class CrossTokenizerRegistrations
{
    /// <summary>DSKD's criterion names (<c>--criterion</c>), accepted as aliases of the registered names.</summary>
    internal static IReadOnlyDictionary<string, string> DskdCriterionAliases { get; } = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["dual_space_kd"] = DskdObjective.RegisteredName,
        ["dual_space_kd_with_cma"] = DskdCmaObjective.RegisteredName,
        ["universal_logit_distillation"] = UldDskdObjective.RegisteredName,
        ["min_edit_dis_kld"] = MinEdObjective.RegisteredName,
    };

    /// <summary>Adds the options (validated at start) once.</summary>
    internal static void AddOptions(IServiceCollection services)
    {
        services.AddOptions<CrossTokenizerOptions>().ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<CrossTokenizerOptions>, CrossTokenizerOptionsValidator>());
    }

    /// <summary>Every registration: <c>dskd</c>, <c>dskd_cma</c>, <c>uld</c>, <c>uld_dskd</c>, <c>min_ed</c>, and DSKD's criterion names as aliases.</summary>
    internal static IEnumerable<ObjectiveRegistration> All()
    {
        var create = new Dictionary<string, Func<IServiceProvider, IDistillationObjective>>(StringComparer.Ordinal)
        {
            [DskdObjective.RegisteredName] = sp => new DskdObjective(Options(sp).Dskd),
            [DskdCmaObjective.RegisteredName] = sp => new DskdCmaObjective(Options(sp).DskdCma),
            [UldObjective.RegisteredName] = sp => new UldObjective(Options(sp).Uld),
            [UldDskdObjective.RegisteredName] = sp => new UldDskdObjective(Options(sp).UldDskd),
            [MinEdObjective.RegisteredName] = sp => CreateMinEd(Options(sp).MinEd, Logger(sp)),
        };
        foreach (var (name, factory) in create)
        {
            yield return new ObjectiveRegistration(name, factory);
        }

        foreach (var (alias, name) in DskdCriterionAliases)
        {
            yield return new ObjectiveRegistration(alias, create[name]);
        }
    }

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

    private static CrossTokenizerOptions Options(IServiceProvider sp) => sp.GetRequiredService<IOptions<CrossTokenizerOptions>>().Value;

    private static ILogger Logger(IServiceProvider sp) =>
        (ILogger?)sp.GetService<ILoggerFactory>()?.CreateLogger("Distill.Losses.CrossTokenizer") ?? NullLogger.Instance;
}
