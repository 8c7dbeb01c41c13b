using Microsoft.Extensions.Options;

namespace Distill;

/// <summary>Validates <see cref="DistillOptions"/> (data annotations and <see cref="System.ComponentModel.DataAnnotations.IValidatableObject"/>) without touching the native runtime.</summary>
[OptionsValidator]
internal sealed partial class DistillOptionsValidator : IValidateOptions<DistillOptions>
{
}
