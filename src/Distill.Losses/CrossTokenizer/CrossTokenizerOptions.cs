using Distill.Losses.DualSpace;
using Microsoft.Extensions.Options;

namespace Distill.Losses.CrossTokenizer;

/// <summary>
/// Options of the dual-space and cross-tokenizer objectives: the <see cref="LossesOptions.CrossTokenizer"/> section, configured
/// by <c>AddDistillCrossTokenizer(...)</c> (configuration section e.g. <c>"CrossTokenizer"</c> with sub-sections <c>Dskd</c>,
/// <c>DskdCma</c>, <c>Uld</c>, <c>UldDskd</c>, <c>MinEd</c>).
/// </summary>
public sealed class CrossTokenizerOptions
{
    /// <summary>Gets the options of <c>dskd</c>.</summary>
    [ValidateObjectMembers]
    public DskdOptions Dskd { get; init; } = new();

    /// <summary>Gets the options of <c>dskd_cma</c>.</summary>
    [ValidateObjectMembers]
    public DskdCmaOptions DskdCma { get; init; } = new();

    /// <summary>Gets the options of <c>uld</c> (original llm-recipes loss).</summary>
    [ValidateObjectMembers]
    public UldOptions Uld { get; init; } = new();

    /// <summary>Gets the options of <c>uld_dskd</c> (DSKD's re-implementation).</summary>
    [ValidateObjectMembers]
    public UldDskdOptions UldDskd { get; init; } = new();

    /// <summary>Gets the options of <c>min_ed</c>.</summary>
    [ValidateObjectMembers]
    public MinEdOptions MinEd { get; init; } = new();
}

/// <summary>Validates <see cref="CrossTokenizerOptions"/> (source-generated, nested sections included).</summary>
[OptionsValidator]
internal sealed partial class CrossTokenizerOptionsValidator : IValidateOptions<CrossTokenizerOptions>
{
}
