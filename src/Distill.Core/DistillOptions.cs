using System.ComponentModel.DataAnnotations;
using Distill.Runtime;

namespace Distill;

/// <summary>Process-wide Distill settings, bound through <c>IOptions&lt;DistillOptions&gt;</c> by <c>services.AddDistill(...)</c>.</summary>
public sealed class DistillOptions : IValidatableObject
{
    /// <summary>Gets or sets the compute device: <c>auto</c> (CUDA when available, else CPU), <c>cpu</c>, <c>cuda</c> or <c>cuda:N</c>.</summary>
    /// <value>The default is <c>auto</c>.</value>
    public string Device { get; set; } = DistillDefaults.Device;

    /// <summary>Gets or sets the compute dtype of model weights: <c>auto</c> (bfloat16 on CUDA, float32 on CPU), <c>float32</c>, <c>bfloat16</c>, <c>float16</c>.</summary>
    /// <value>The default is <c>auto</c>.</value>
    /// <remarks>Losses always compute softmax and divergences in float32, whatever this says.</remarks>
    public string DType { get; set; } = DistillDefaults.DType;

    /// <summary>Gets or sets the number of intra-op CPU threads torch uses; <see langword="null"/> keeps Distill's default.</summary>
    /// <value>The default is <see langword="null"/>: one thread per physical core with a passive OpenMP wait policy (see <c>DistillRuntime.CpuThreading</c>), or <c>OMP_NUM_THREADS</c> when set.</value>
    [Range(1, int.MaxValue)]
    public int? Threads { get; set; }

    /// <summary>Gets or sets the global random seed applied at start-up (torch and Distill's own generators).</summary>
    /// <value>The default is 42.</value>
    public int Seed { get; set; } = DistillDefaults.Seed;

    /// <summary>Checks <see cref="Device"/> and <see cref="DType"/> (called by the source-generated options validator).</summary>
    /// <param name="validationContext">The validation context.</param>
    /// <returns>The failures, each naming the option.</returns>
    IEnumerable<ValidationResult> IValidatableObject.Validate(ValidationContext validationContext)
    {
        if (ComputeSelector.ValidateDeviceString(Device) is string d)
        {
            yield return new ValidationResult($"{nameof(DistillOptions)}.{nameof(Device)}: {d}", [nameof(Device)]);
        }

        if (ComputeSelector.ValidateDTypeString(DType) is string t)
        {
            yield return new ValidationResult($"{nameof(DistillOptions)}.{nameof(DType)}: {t}", [nameof(DType)]);
        }
    }
}

/// <summary>Defaults of <see cref="DistillOptions"/>.</summary>
internal static class DistillDefaults
{
    public const string Device = "auto";
    public const string DType = "auto";
    public const int Seed = 42;
}
