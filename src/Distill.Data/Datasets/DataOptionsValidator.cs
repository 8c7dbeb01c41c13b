using Microsoft.Extensions.Options;

namespace Distill.Data;

/// <summary>Validates <see cref="DataOptions"/>, including the cross-field rules.</summary>
internal sealed class DataOptionsValidator : IValidateOptions<DataOptions>
{
    public ValidateOptionsResult Validate(string? name, DataOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var failures = new List<string>();
        if (options.MaxLength < 2)
        {
            failures.Add($"{nameof(DataOptions)}.{nameof(DataOptions.MaxLength)} must be at least 2 (got {options.MaxLength}).");
        }

        if (options.MaxPromptLength < 1)
        {
            failures.Add($"{nameof(DataOptions)}.{nameof(DataOptions.MaxPromptLength)} must be positive (got {options.MaxPromptLength}).");
        }
        else if (options.MaxPromptLength >= options.MaxLength)
        {
            failures.Add($"{nameof(DataOptions)}.{nameof(DataOptions.MaxPromptLength)} ({options.MaxPromptLength}) must be smaller than {nameof(DataOptions.MaxLength)} ({options.MaxLength}), or no response token fits.");
        }

        if (options.BatchSize < 1)
        {
            failures.Add($"{nameof(DataOptions)}.{nameof(DataOptions.BatchSize)} must be positive (got {options.BatchSize}).");
        }

        if (!Enum.IsDefined(options.PaddingSide))
        {
            failures.Add($"{nameof(DataOptions)}.{nameof(DataOptions.PaddingSide)} must be Right or Left (got {options.PaddingSide}).");
        }

        try
        {
            InstructionTemplate.FromName(options.Template ?? string.Empty);
        }
        catch (ArgumentException ex)
        {
            failures.Add($"{nameof(DataOptions)}.{nameof(DataOptions.Template)}: {ex.Message}");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
