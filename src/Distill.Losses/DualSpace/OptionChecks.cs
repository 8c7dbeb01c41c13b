using Microsoft.Extensions.Options;

namespace Distill.Losses.DualSpace;

/// <summary>Small shared rules for the options of the dual-space and cross-tokenizer objectives.</summary>
internal static class OptionChecks
{
    internal static void Fraction(List<string> failures, string type, string name, double value)
    {
        if (!(value is >= 0 and <= 1))
        {
            failures.Add($"{type}.{name} must be in [0, 1] (got {value}).");
        }
    }

    internal static void Positive(List<string> failures, string type, string name, double value)
    {
        if (!(double.IsFinite(value) && value > 0))
        {
            failures.Add($"{type}.{name} must be a finite positive number (got {value}).");
        }
    }

    internal static void NonNegative(List<string> failures, string type, string name, double value)
    {
        if (!(double.IsFinite(value) && value >= 0))
        {
            failures.Add($"{type}.{name} must be a finite non-negative number (got {value}).");
        }
    }

    /// <summary>Throws <see cref="ArgumentException"/> listing every failure.</summary>
    internal static void ThrowIfInvalid(IReadOnlyList<string> failures, string paramName)
    {
        if (failures.Count > 0)
        {
            throw new ArgumentException(string.Join(" ", failures), paramName);
        }
    }

    /// <summary>An <see cref="IValidateOptions{TOptions}"/> result from a list of failures.</summary>
    internal static ValidateOptionsResult ToResult(IReadOnlyList<string> failures) =>
        failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
}
