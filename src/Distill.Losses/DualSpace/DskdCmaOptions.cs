using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;

namespace Distill.Losses.DualSpace;

/// <summary>Options of <see cref="DskdCmaObjective"/> (<c>dskd_cma</c>, DSKD with cross-model attention for different vocabularies).</summary>
/// <remarks>Defaults are those of DSKD's <c>scripts/gpt2/dskd_cma.sh</c>; the projectors' learning rate is the trainer's <c>ObjectiveLearningRate</c>.</remarks>
public sealed class DskdCmaOptions
{
    /// <summary>Gets or sets α (<c>kd_rate</c>): L = (1 − α)·CE + α·(t2s_ce + t2s_kd + s2t_kd).</summary>
    /// <value>The default is 0.5.</value>
    [Range(0.0, 1.0)]
    public double Alpha { get; set; } = DskdDefaults.Alpha;

    /// <summary>Gets or sets the KD temperature T.</summary>
    /// <value>The default is 2.0.</value>
    [Range(double.Epsilon, double.MaxValue)]
    public double Temperature { get; set; } = DskdDefaults.Temperature;

    /// <summary>Gets or sets the extra teacher temperature τ of the student-space term (<c>teacher_temperature</c>, applied with <c>use_tea_temp=True</c>).</summary>
    /// <value>The default is 1.0.</value>
    [Range(double.Epsilon, double.MaxValue)]
    public double TeacherTemperature { get; set; } = DskdDefaults.TeacherTemperature;

    /// <summary>Gets or sets the student-space distance (<c>--kd-objective</c>); see <see cref="DskdOptions.Distance"/>.</summary>
    /// <value>The default is <c>forward_kl</c>.</value>
    [KnownDskdDistance]
    public string Distance { get; set; } = DskdDefaults.Distance;

    /// <summary>Gets or sets λ of the skewed KL distances.</summary>
    /// <value>The default is 0.1.</value>
    [Range(0.0, 1.0)]
    public double SkewLambda { get; set; } = DskdDefaults.SkewLambda;

    /// <summary>Gets or sets the head/tail threshold of the adaptive KL distance.</summary>
    /// <value>The default is 0.5.</value>
    [Range(0.0, 1.0)]
    public double AdaptiveKlAlpha { get; set; } = DskdDefaults.AdaptiveKlAlpha;

    /// <summary>Gets or sets a value indicating whether only the projectors are pre-trained (<c>--only-save-projector</c>): the KD term is t2s_ce alone.</summary>
    /// <value>The default is <see langword="false"/>.</value>
    public bool ProjectorsOnly { get; set; }
}

/// <summary>Validates <see cref="DskdCmaOptions"/> (source-generated from its data annotations).</summary>
[OptionsValidator]
internal sealed partial class DskdCmaOptionsValidator : IValidateOptions<DskdCmaOptions>
{
}
