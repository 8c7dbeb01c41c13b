using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;

namespace Distill.Losses.DualSpace;

/// <summary>Options of <see cref="DskdObjective"/> (<c>dskd</c>, DSKD with a shared vocabulary).</summary>
/// <remarks>
/// The projectors' learning rate is the trainer's <c>TrainingOptions.ObjectiveLearningRate</c> (1e-3, DSKD's <c>projector_lr</c>).
/// Defaults are the values of every DSKD v1 script (<c>scripts/gpt2/dskd.sh</c>).
/// </remarks>
public sealed class DskdOptions
{
    /// <summary>Gets or sets α (<c>kd_rate</c>): L = (1 − α)·CE + α·(t2s_kd + t2s_ce + s2t_kd).</summary>
    /// <value>The default is 0.5.</value>
    [Range(0.0, 1.0)]
    public double Alpha { get; set; } = DskdDefaults.Alpha;

    /// <summary>Gets or sets the KD temperature T (both logits divided by T; no T² factor).</summary>
    /// <value>The default is 2.0.</value>
    [Range(double.Epsilon, double.MaxValue)]
    public double Temperature { get; set; } = DskdDefaults.Temperature;

    /// <summary>
    /// Gets or sets the student-space distance (<c>--kd-objective</c>): <c>forward_kl</c>, <c>reverse_kl</c>, <c>js_divergence</c>,
    /// <c>skewed_forward_kl</c>, <c>skewed_reverse_kl</c>, <c>adaptive_kl</c>.
    /// </summary>
    /// <value>The default is <c>forward_kl</c>.</value>
    /// <remarks>The teacher-space term is always forward KL, as in DSKD v1.</remarks>
    [KnownDskdDistance]
    public string Distance { get; set; } = DskdDefaults.Distance;

    /// <summary>Gets or sets λ of the skewed KL distances (<c>skew_lambda</c>).</summary>
    /// <value>The default is 0.1.</value>
    [Range(0.0, 1.0)]
    public double SkewLambda { get; set; } = DskdDefaults.SkewLambda;

    /// <summary>Gets or sets the head/tail mass threshold of the adaptive KL distance (<c>adaptive_kl_alpha</c>).</summary>
    /// <value>The default is 0.5.</value>
    [Range(0.0, 1.0)]
    public double AdaptiveKlAlpha { get; set; } = DskdDefaults.AdaptiveKlAlpha;
}

/// <summary>Defaults of <see cref="DskdOptions"/> and <see cref="DskdCmaOptions"/> (DSKD v1 scripts).</summary>
internal static class DskdDefaults
{
    public const double Alpha = 0.5;
    public const double Temperature = 2.0;
    public const string Distance = "forward_kl";
    public const double SkewLambda = 0.1;
    public const double AdaptiveKlAlpha = 0.5;
    public const double TeacherTemperature = 1.0;
}

/// <summary>Validates <see cref="DskdOptions"/> (source-generated from its data annotations).</summary>
[OptionsValidator]
internal sealed partial class DskdOptionsValidator : IValidateOptions<DskdOptions>
{
}
