using Microsoft.Extensions.Options;

namespace Distill.Data;

/// <summary>Validates <see cref="DataOptions"/> (data annotations plus the cross-field rules of <see cref="System.ComponentModel.DataAnnotations.IValidatableObject"/>).</summary>
[OptionsValidator]
internal sealed partial class DataOptionsValidator : IValidateOptions<DataOptions>
{
}
