using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;

namespace Distill.Data;

/// <summary>
/// Where the run's offline teacher cache is and what it must match; bound by <c>AddDistillTeacherCache</c> (configuration
/// section e.g. <c>"TeacherCache"</c>). Fields left <see langword="null"/> are not checked against the manifest.
/// </summary>
public sealed class TeacherCacheOptions
{
    /// <summary>Gets or sets the cache folder (the one <see cref="TeacherCacheWriter.Merge"/> completed).</summary>
    [Required]
    public string Directory { get; set; } = "";

    /// <summary>Gets or sets the expected dataset hash (<see cref="TeacherCacheHashes.Dataset"/> of the training examples).</summary>
    public string? DatasetHash { get; set; }

    /// <summary>Gets or sets the expected tokenizer hash (<see cref="TeacherCacheHashes.Tokenizer"/>).</summary>
    public string? TokenizerHash { get; set; }

    /// <summary>Gets or sets the expected template name.</summary>
    public string? Template { get; set; }

    /// <summary>Gets or sets the expected k.</summary>
    [Range(1, 1 << 20)]
    public int? K { get; set; }

    /// <summary>Gets or sets the expected teacher name.</summary>
    public string? Teacher { get; set; }

    /// <summary>Gets or sets the expected tokenisation of the rows (<see cref="TeacherCacheTokens.Teacher"/> for <c>uld</c>).</summary>
    public TeacherCacheTokens? Tokens { get; set; }

    /// <summary>Gets or sets a value indicating whether every chunk is hashed against the manifest when the cache is opened.</summary>
    /// <value>The default is <see langword="false"/> (size and schema are always checked).</value>
    public bool VerifyChecksums { get; set; }

    /// <summary>The expectation these options describe.</summary>
    /// <returns>What <see cref="TeacherCacheReader.Open"/> checks.</returns>
    public TeacherCacheExpectation ToExpectation() => new()
    {
        DatasetHash = DatasetHash,
        TokenizerHash = TokenizerHash,
        Template = Template,
        K = K,
        Teacher = Teacher,
        Tokens = Tokens,
    };
}

/// <summary>Validates <see cref="TeacherCacheOptions"/> (source-generated).</summary>
[OptionsValidator]
internal sealed partial class TeacherCacheOptionsValidator : IValidateOptions<TeacherCacheOptions>
{
}
