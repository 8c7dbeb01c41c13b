using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;

namespace Distill.Losses.DualSpace;

/// <summary>Runs an options type's source-generated validator when an objective is constructed directly (outside DI).</summary>
internal static class OptionChecks
{
    /// <summary>Throws <see cref="ArgumentException"/> listing every failure of <paramref name="validator"/> on <paramref name="options"/>.</summary>
    internal static T ThrowIfInvalid<T>(IValidateOptions<T> validator, T options, string paramName)
        where T : class
    {
        LossesOptionsValidation.ThrowIfInvalid(validator.Validate(null, options), paramName);
        return options;
    }
}

/// <summary>A DSKD student-space distance name (<c>--kd-objective</c>): one of <see cref="DskdDistances.Names"/>.</summary>
[AttributeUsage(AttributeTargets.Property)]
internal sealed class KnownDskdDistanceAttribute : ValidationAttribute
{
    protected override ValidationResult? IsValid(object? value, ValidationContext validationContext) =>
        DskdDistances.IsKnown(value as string)
            ? ValidationResult.Success
            : new ValidationResult(
                $"{validationContext.DisplayName} '{value}' is not one of: {string.Join(", ", DskdDistances.Names)}.",
                validationContext.MemberName is null ? null : [validationContext.MemberName]);
}
