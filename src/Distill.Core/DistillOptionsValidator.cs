using Distill.Runtime;
using Microsoft.Extensions.Options;

namespace Distill;

/// <summary>Validates <see cref="DistillOptions"/> without touching the native runtime.</summary>
internal sealed class DistillOptionsValidator : IValidateOptions<DistillOptions>
{
    public ValidateOptionsResult Validate(string? name, DistillOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var failures = new List<string>();
        if (ComputeSelector.ValidateDeviceString(options.Device) is string d)
        {
            failures.Add($"{nameof(DistillOptions)}.{nameof(DistillOptions.Device)}: {d}");
        }

        if (ComputeSelector.ValidateDTypeString(options.DType) is string t)
        {
            failures.Add($"{nameof(DistillOptions)}.{nameof(DistillOptions.DType)}: {t}");
        }

        if (options.Threads is <= 0)
        {
            failures.Add($"{nameof(DistillOptions)}.{nameof(DistillOptions.Threads)} must be positive (got {options.Threads}).");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
