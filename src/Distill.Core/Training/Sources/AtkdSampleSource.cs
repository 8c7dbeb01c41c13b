namespace Distill.Training.Sources;

/// <summary>
/// ATKD's <c>--sample_source</c>: where the training sequences of a micro-batch come from (Zhong et al., "Revisiting
/// Knowledge Distillation for Autoregressive Language Models", ACL 2024; official <c>distill/distill_trainer.py</c>).
/// </summary>
/// <remarks>Create the matching batch transform with <see cref="SampleSources.Create"/>; see <c>docs/sample-sources.md</c>.</remarks>
public enum AtkdSampleSource
{
    /// <summary><c>gt</c>: the dataset's ground-truth responses (no generation).</summary>
    Gt,

    /// <summary><c>teacher</c>: teacher-generated answers, trained from a file written beforehand (SeqKD); no generation during training.</summary>
    Teacher,

    /// <summary><c>student</c>: the student generates every response greedily (on-policy, λ = 1).</summary>
    Student,

    /// <summary><c>mix_request_teacher</c>: per micro-batch, the student generates with probability 0.5, else the dataset (teacher answers) is used.</summary>
    MixRequestTeacher,

    /// <summary><c>mix_request_gt</c>: per micro-batch, the student generates with probability 0.5, else the dataset (ground truth) is used.</summary>
    MixRequestGt,

    /// <summary><c>mix_token</c>: per generated position one model (student with probability 0.5, else teacher, the same for the whole batch) proposes the next token greedily.</summary>
    MixToken,
}

/// <summary>Parses and formats the official <c>--sample_source</c> strings.</summary>
public static class AtkdSampleSourceNames
{
    /// <summary>Parses an official name (<c>gt</c>, <c>teacher</c>, <c>student</c>, <c>mix_request_teacher</c>, <c>mix_request_gt</c>, <c>mix_token</c>); the enum names are accepted too, case-insensitively.</summary>
    /// <param name="name">The name.</param>
    /// <returns>The source.</returns>
    /// <exception cref="ArgumentException">An unknown name; the message lists the known ones.</exception>
    public static AtkdSampleSource Parse(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        foreach (var source in Enum.GetValues<AtkdSampleSource>())
        {
            if (string.Equals(name, ToName(source), StringComparison.OrdinalIgnoreCase) || string.Equals(name, source.ToString(), StringComparison.OrdinalIgnoreCase))
            {
                return source;
            }
        }

        throw new ArgumentException($"Unknown ATKD sample source '{name}'; expected one of: {string.Join(", ", Enum.GetValues<AtkdSampleSource>().Select(ToName))}.", nameof(name));
    }

    /// <summary>Gets the official name of <paramref name="source"/> (e.g. <c>mix_request_gt</c>).</summary>
    /// <param name="source">The source.</param>
    /// <returns>The name.</returns>
    public static string ToName(AtkdSampleSource source) => source switch
    {
        AtkdSampleSource.Gt => "gt",
        AtkdSampleSource.Teacher => "teacher",
        AtkdSampleSource.Student => "student",
        AtkdSampleSource.MixRequestTeacher => "mix_request_teacher",
        AtkdSampleSource.MixRequestGt => "mix_request_gt",
        AtkdSampleSource.MixToken => "mix_token",
        _ => throw new ArgumentOutOfRangeException(nameof(source), source, "Unknown ATKD sample source."),
    };
}
