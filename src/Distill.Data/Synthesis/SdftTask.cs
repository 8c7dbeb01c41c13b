namespace Distill.Data.Synthesis;

/// <summary>Which answer check the SDFT filter applies to a rewrite (official <c>gen_distilled_data.get_check_func</c>).</summary>
public enum SdftTaskKind
{
    /// <summary>General instruction data (alpaca, dolly, lima, openhermes): no answer check.</summary>
    General,

    /// <summary>Math (gsm8k, MultiArith): the last integer of the rewrite must equal the reference's (<c>check_math</c>).</summary>
    Math,

    /// <summary>Code (magicoder): the rewrite must contain <c>```python</c> and start with "I have", "Here is" or "I implemented" (<c>check_magicoder</c>).</summary>
    Code,

    /// <summary>Function calling (openfunction): the reference call must appear in the rewrite (<c>check_openfunction</c>).</summary>
    OpenFunction,
}

/// <summary>
/// An SDFT task type: the answer check, the distillation template, the training template and the official epoch count
/// (the table of <c>scripts/&lt;dataset&gt;/sdft.sh</c>, identical on both branches).
/// </summary>
/// <param name="Name">The task name.</param>
/// <param name="Kind">The answer check.</param>
/// <param name="DistillTemplate">The template the seed model rewrites with (it sees the reference).</param>
/// <param name="TrainTemplate">The template of LoRA fine-tuning and of the task's evaluation prompts.</param>
/// <param name="Epochs">The official <c>--num_train_epochs</c>.</param>
public sealed record SdftTask(string Name, SdftTaskKind Kind, SdftTemplate DistillTemplate, SdftTemplate TrainTemplate, int Epochs)
{
    /// <summary>Gets every known task type: the generic names (general, math, code, openfunction) and the official dataset names.</summary>
    public static IReadOnlyList<SdftTask> All { get; } =
    [
        new("general", SdftTaskKind.General, SdftTemplate.AlpacaDistillUsing, SdftTemplate.Alpaca, 2),
        new("math", SdftTaskKind.Math, SdftTemplate.Gsm8kDistill, SdftTemplate.Gsm8kTrain, 5),
        new("code", SdftTaskKind.Code, SdftTemplate.AlpacaDistillRefer, SdftTemplate.Alpaca, 2),
        new("openfunction", SdftTaskKind.OpenFunction, SdftTemplate.AlpacaDistillRefer, SdftTemplate.Alpaca, 5),
        new("alpaca", SdftTaskKind.General, SdftTemplate.AlpacaDistillUsing, SdftTemplate.Alpaca, 2),
        new("dolly", SdftTaskKind.General, SdftTemplate.AlpacaDistillUsing, SdftTemplate.Alpaca, 2),
        new("lima", SdftTaskKind.General, SdftTemplate.AlpacaDistillUsing, SdftTemplate.Alpaca, 2),
        new("openhermes", SdftTaskKind.General, SdftTemplate.AlpacaDistillUsing, SdftTemplate.Alpaca, 2),
        new("magicoder", SdftTaskKind.Code, SdftTemplate.AlpacaDistillRefer, SdftTemplate.Alpaca, 2),
        new("gsm8k", SdftTaskKind.Math, SdftTemplate.Gsm8kDistill, SdftTemplate.Gsm8kTrain, 5),
        new("multiarith", SdftTaskKind.Math, SdftTemplate.Gsm8kDistill, SdftTemplate.Gsm8kTrain, 5),
    ];

    /// <summary>Looks a task type up by name (case-insensitive).</summary>
    /// <param name="name">general, math, code, openfunction, or an official dataset name (alpaca, dolly, lima, openhermes, magicoder, gsm8k, multiarith).</param>
    /// <returns>The task type.</returns>
    /// <exception cref="ArgumentException">Unknown name; the message lists the known ones.</exception>
    public static SdftTask FromName(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        return All.FirstOrDefault(t => string.Equals(t.Name, name, StringComparison.OrdinalIgnoreCase))
            ?? throw new ArgumentException($"Unknown SDFT task type '{name}'. Known: {string.Join(", ", All.Select(t => t.Name))}.", nameof(name));
    }
}
