using Distill.Losses.DualSpace;
using Microsoft.Extensions.Options;

namespace Distill.Losses.CrossTokenizer;

/// <summary>
/// Options of the dual-space and cross-tokenizer objectives, bound by <c>AddDistillCrossTokenizer(...)</c> (configuration
/// section e.g. <c>"CrossTokenizer"</c> with sub-sections <c>Dskd</c>, <c>DskdCma</c>, <c>Uld</c>, <c>UldDskd</c>, <c>MinEd</c>).
/// </summary>
public sealed class CrossTokenizerOptions
{
    /// <summary>Gets the options of <c>dskd</c>.</summary>
    public DskdOptions Dskd { get; init; } = new();

    /// <summary>Gets the options of <c>dskd_cma</c>.</summary>
    public DskdCmaOptions DskdCma { get; init; } = new();

    /// <summary>Gets the options of <c>uld</c> (original llm-recipes loss).</summary>
    public UldOptions Uld { get; init; } = new();

    /// <summary>Gets the options of <c>uld_dskd</c> (DSKD's re-implementation).</summary>
    public UldDskdOptions UldDskd { get; init; } = new();

    /// <summary>Gets the options of <c>min_ed</c>.</summary>
    public MinEdOptions MinEd { get; init; } = new();

    /// <summary>Every rule violation of every sub-section.</summary>
    internal IReadOnlyList<string> Validate() =>
        [.. Dskd.Validate(), .. DskdCma.Validate(), .. Uld.Validate(), .. UldDskd.Validate(), .. MinEd.Validate()];
}

/// <summary>Validates <see cref="CrossTokenizerOptions"/> at start-up.</summary>
internal sealed class CrossTokenizerOptionsValidator : IValidateOptions<CrossTokenizerOptions>
{
    public ValidateOptionsResult Validate(string? name, CrossTokenizerOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return OptionChecks.ToResult(options.Validate());
    }
}
