using System.ComponentModel.DataAnnotations;
using Distill.Losses.DualSpace;
using Microsoft.Extensions.Options;

namespace Distill.Losses.CrossTokenizer;

/// <summary>Options of <see cref="MinEdObjective"/> (<c>min_ed</c>, DSKD's <c>min_edit_dis_kld</c>).</summary>
/// <remarks>
/// When the objective is created by name (factory / DI) it loads the two tokenizers from <see cref="StudentTokenizerPath"/> and
/// <see cref="TeacherTokenizerPath"/> and the vocabulary map from <see cref="VocabularyMapPath"/>, or builds the map from the
/// tokenizers when that path is empty (DSKD does not ship its <c>tea2stu_id_mapping.json</c>).
/// </remarks>
public sealed class MinEdOptions
{
    /// <summary>Gets or sets α (<c>kd_rate</c>): L = (1 − α)·CE + α·KD.</summary>
    /// <value>The default is 0.5.</value>
    [Range(0.0, 1.0)]
    public double Alpha { get; set; } = DskdDefaults.Alpha;

    /// <summary>Gets or sets the temperature T of the forward KL (both logits divided by T; no T² factor).</summary>
    /// <value>The default is 2.0.</value>
    [Range(double.Epsilon, double.MaxValue)]
    public double Temperature { get; set; } = DskdDefaults.Temperature;

    /// <summary>Gets or sets the student tokenizer folder (HF <c>tokenizer.json</c>), used when created by name.</summary>
    public string? StudentTokenizerPath { get; set; }

    /// <summary>Gets or sets the teacher tokenizer folder, used when created by name.</summary>
    public string? TeacherTokenizerPath { get; set; }

    /// <summary>Gets or sets a DSKD-format <c>tea2stu_id_mapping.json</c>; empty = build the map from the two tokenizers.</summary>
    public string? VocabularyMapPath { get; set; }
}

/// <summary>Validates <see cref="MinEdOptions"/> (source-generated from its data annotations).</summary>
[OptionsValidator]
internal sealed partial class MinEdOptionsValidator : IValidateOptions<MinEdOptions>
{
}
