using Microsoft.Extensions.Logging;

namespace Distill.Training.Sources;

/// <summary>
/// Creates the sample source of an ATKD <c>--sample_source</c> or of GKD's on-policy mode: the one entry point. Add the result
/// to <see cref="DistillationTrainer.BatchTransforms"/>.
/// </summary>
/// <example>
/// <code>
/// var source = SampleSources.Create(AtkdSampleSource.MixRequestGt, student, teacher);
/// trainer.BatchTransforms.Add(source);
/// </code>
/// </example>
public static class SampleSources
{
    /// <summary>Creates the source for an ATKD sample source, with the official constants unless <paramref name="options"/> says otherwise.</summary>
    /// <param name="source">The ATKD source.</param>
    /// <param name="student">The student being trained.</param>
    /// <param name="teacher">
    /// The trainer's teacher. Required for <see cref="AtkdSampleSource.MixToken"/> (its <see cref="ITeacher.Model"/> proposes
    /// tokens); for the other generating sources it is only checked: it scores the student's token ids, so its vocabulary (and
    /// tokenizer id, when both are known) must be the student's.
    /// </param>
    /// <param name="options">The options; <see langword="null"/> uses <see cref="SampleSourceOptions.Atkd"/>. For <see cref="AtkdSampleSource.Student"/> the request ratio is always 1.</param>
    /// <param name="logger">Receives the periodic statistics.</param>
    /// <returns>
    /// <see cref="DatasetSource"/> for <c>gt</c> and <c>teacher</c> (train on the ground truth, or on a file of teacher answers);
    /// <see cref="OnPolicySource"/> for <c>student</c> (λ = 1) and <c>mix_request_*</c> (λ = <see cref="SampleSourceOptions.StudentRequestRatio"/>);
    /// <see cref="MixTokenSource"/> for <c>mix_token</c>.
    /// </returns>
    /// <exception cref="ArgumentException">Invalid options; a teacher with another vocabulary or tokenizer; <c>mix_token</c> without a local teacher model.</exception>
    public static ISampleSource Create(AtkdSampleSource source, ICausalLM student, ITeacher? teacher = null, SampleSourceOptions? options = null, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(student);
        var o = options?.Clone() ?? SampleSourceOptions.Atkd(source);
        o.ThrowIfInvalid();
        var name = AtkdSampleSourceNames.ToName(source);
        if (source is AtkdSampleSource.Gt or AtkdSampleSource.Teacher)
        {
            return new DatasetSource(name);
        }

        if (teacher is not null)
        {
            EnsureSameVocabulary(student, teacher.Info.VocabularySize, teacher.Info.TokenizerId, o, name);
            if (teacher.Model is { } model)
            {
                EnsureSameVocabulary(student, model.Config.VocabSize, null, o, name);
            }
        }

        switch (source)
        {
            case AtkdSampleSource.Student:
                o.StudentRequestRatio = 1.0;
                return new OnPolicySource(student, o, logger, name);
            case AtkdSampleSource.MixRequestTeacher or AtkdSampleSource.MixRequestGt:
                return new OnPolicySource(student, o, logger, name);
            case AtkdSampleSource.MixToken:
                var teacherModel = teacher?.Model
                    ?? throw new ArgumentException($"The mix_token source needs a local teacher model (ITeacher.Model) to propose tokens; got {(teacher is null ? "no teacher" : $"a {teacher.GetType().Name} without a model")}.", nameof(teacher));
                return new MixTokenSource(student, teacherModel, o, logger);
            default:
                throw new ArgumentOutOfRangeException(nameof(source), source, "Unknown ATKD sample source.");
        }
    }

    /// <summary>Creates GKD's on-policy source: with probability λ per micro-batch the student generates the responses.</summary>
    /// <param name="student">The student being trained.</param>
    /// <param name="options">λ, decoding and limits; <see langword="null"/> uses <see cref="SampleSourceOptions.Gkd"/> (TRL's defaults).</param>
    /// <param name="logger">Receives the periodic statistics.</param>
    /// <returns>The source.</returns>
    public static OnPolicySource OnPolicy(ICausalLM student, SampleSourceOptions? options = null, ILogger? logger = null) =>
        new(student, options ?? SampleSourceOptions.Gkd(), logger);

    /// <summary>The teacher scores (or, for mix_token, proposes) student token ids: one vocabulary and tokenizer on both sides.</summary>
    internal static void EnsureSameVocabulary(ICausalLM student, int teacherVocabulary, string? teacherTokenizerId, SampleSourceOptions options, string source)
    {
        var vocab = student.Config.VocabSize;
        if (teacherVocabulary > 0 && teacherVocabulary != vocab)
        {
            throw new ArgumentException($"The {source} sample source feeds the student's token ids to the teacher, so both need one vocabulary: the student has {vocab} entries and the teacher {teacherVocabulary}. Use a same-tokenizer teacher (cross-tokenizer objectives train on dataset or teacher-generated text instead).");
        }

        if (teacherTokenizerId is not null && options.TokenizerId is not null && !string.Equals(teacherTokenizerId, options.TokenizerId, StringComparison.Ordinal))
        {
            throw new ArgumentException($"The {source} sample source needs the teacher and the student to share a tokenizer: the teacher's is '{teacherTokenizerId}' and the student's (SampleSourceOptions.TokenizerId) '{options.TokenizerId}'.");
        }
    }
}
