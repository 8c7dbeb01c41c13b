using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;

namespace Distill.Losses.CrossTokenizer;

/// <summary>Options of <see cref="UldObjective"/> (<c>uld</c>, the original Universal Logit Distillation loss of llm-recipes).</summary>
/// <remarks>Defaults are llm-recipes' training configuration (<c>DistillationLoss(skip_student_eos=True)</c>, <c>distil_factor</c> 1.5).</remarks>
public sealed class UldOptions
{
    /// <summary>Gets or sets λ (<c>distil_factor</c>): loss = CE_mean + λ·ULD.</summary>
    /// <value>The default is 1.5. (llm-recipes evaluates and selects checkpoints with λ = 1.) Against a near one-hot teacher the
    /// ULD term rewards the student's confidence in its own argmax, not correctness: at 1.5 it collapses a randomly
    /// initialised student in the cross-tokenizer sample (docs/cross-tokenizer.md).</value>
    [Range(0.0, double.MaxValue)]
    public double Lambda { get; set; } = UldDefaults.Lambda;

    /// <summary>Gets or sets the student temperature (<c>student_temperature</c>), dividing the student logits before the softmax.</summary>
    /// <value>The default is 1.0.</value>
    [Range(double.Epsilon, double.MaxValue)]
    public double StudentTemperature { get; set; } = UldDefaults.Temperature;

    /// <summary>Gets or sets the teacher temperature (<c>teacher_temperature</c>).</summary>
    /// <value>The default is 1.0.</value>
    [Range(double.Epsilon, double.MaxValue)]
    public double TeacherTemperature { get; set; } = UldDefaults.Temperature;

    /// <summary>Gets or sets a value indicating whether the student's last answer position (its EOS) is left out of the ULD term (<c>skip_student_eos</c>).</summary>
    /// <value>The default is <see langword="true"/>: ULD's student answers end with EOS, the teacher's do not.</value>
    public bool SkipStudentEos { get; set; } = true;

    /// <summary>Gets or sets a value indicating whether the teacher's last answer position is left out (<c>skip_teacher_eos</c>).</summary>
    /// <value>The default is <see langword="false"/>.</value>
    public bool SkipTeacherEos { get; set; }
}

/// <summary>Options of <see cref="UldDskdObjective"/> (<c>uld_dskd</c>, DSKD's re-implementation of ULD).</summary>
/// <remarks>There is deliberately no temperature: DSKD's ULD ignores <c>--kd-temperature</c> (softmax at T = 1).</remarks>
public sealed class UldDskdOptions
{
    /// <summary>Gets or sets α (<c>kd_rate</c>): L = (1 − α)·CE_sum + α·ULD_sum.</summary>
    /// <value>The default is 0.5.</value>
    [Range(0.0, 1.0)]
    public double Alpha { get; set; } = UldDefaults.DskdAlpha;
}

/// <summary>Defaults of the ULD options.</summary>
internal static class UldDefaults
{
    public const double Lambda = 1.5;
    public const double Temperature = 1.0;
    public const double DskdAlpha = 0.5;
}

/// <summary>Validates <see cref="UldOptions"/> (source-generated from its data annotations).</summary>
[OptionsValidator]
internal sealed partial class UldOptionsValidator : IValidateOptions<UldOptions>
{
}

/// <summary>Validates <see cref="UldDskdOptions"/> (source-generated from its data annotations).</summary>
[OptionsValidator]
internal sealed partial class UldDskdOptionsValidator : IValidateOptions<UldDskdOptions>
{
}
