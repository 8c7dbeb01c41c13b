using Distill.Data;

namespace Distill.Quickstart;

/// <summary>
/// Everything the quickstart does, with defaults that run end to end on the generated letter tasks in a few minutes on 2 CPU cores:
/// a shipped teacher, a small labelled set, many unlabelled prompts, every student row over several seeds.
/// </summary>
public sealed record QuickstartSettings
{
    /// <summary>Gets the run folder: the teacher-answer cache, results.md/results.json, per-run metrics and TensorBoard logs.</summary>
    public string OutputDirectory { get; init; } = "runs/quickstart";

    /// <summary>Gets α of the divergence objectives (<c>forward_kl</c>, ...): the loss is (1 − α)·CE + α·KD (DSKD <c>--kd-rate</c>).</summary>
    public double KdRate { get; init; } = 0.5;

    /// <summary>Gets the temperature of the divergence objectives (DSKD <c>--kd-temperature</c>; 1.0 here: on the bundled tasks T = 2 gave the student a worse fit).</summary>
    public double KdTemperature { get; init; } = 1.0;

    /// <summary>Gets an HF teacher folder; <see langword="null"/> = the teacher shipped with the sample (<see cref="ShippedTeacher"/>).</summary>
    public string? TeacherPath { get; init; }

    /// <summary>Gets an HF student folder; <see langword="null"/> creates a small random GPT-2.</summary>
    public string? StudentPath { get; init; }

    /// <summary>Gets a JSONL file of instruction data (instruction/input/output or prompt/output); <see langword="null"/> = <see cref="Dataset"/>.</summary>
    public string? DataPath { get; init; }

    /// <summary>The default <see cref="Dataset"/>: the generated <see cref="LetterTasks"/> (250 test rows).</summary>
    public const string LettersDataset = "letters";

    /// <summary>The bundled instruction data (<see cref="BundledData"/>; its <see cref="Tasks"/> families, 41 test rows by default).</summary>
    public const string BundledDataset = "bundled";

    /// <summary>
    /// Gets the built-in data used when no <see cref="DataPath"/> is given: <see cref="LettersDataset"/> (default; shipped teacher
    /// <see cref="ShippedTeacher"/>) or <see cref="BundledDataset"/> (shipped teacher <see cref="BundledTeacher"/>).
    /// </summary>
    public string Dataset { get; init; } = LettersDataset;

    /// <summary>Gets the prompt template for <see cref="DataPath"/> (<c>compact</c>, <c>alpaca</c>, <c>dolly</c>, ...).</summary>
    public string Template { get; init; } = "compact";

    /// <summary>
    /// Gets the task families of the bundled data (each example's <c>task</c> field) the quickstart trains, selects and
    /// evaluates on; <see langword="null"/> or empty = every family. Ignored with <see cref="DataPath"/>. The default leaves
    /// out 2-digit <c>add</c>/<c>subtract</c> (70 % of the bundled data) and <c>reverse</c>/<c>sort</c>, which the shipped
    /// teacher does not learn for unseen inputs in the minutes it is trained (with every family it reached 5.5 EM).
    /// </summary>
    public IReadOnlyList<string>? Tasks { get; init; } = DefaultTasks;

    /// <summary>Gets the default <see cref="Tasks"/> of the bundled data: the families its shipped teacher learns (408 train, 55 dev, 41 test rows).</summary>
    public static IReadOnlyList<string> DefaultTasks { get; } = ["uppercase", "count", "capital", "opposite", "multiply"];

    /// <summary>
    /// Gets the number of labelled training examples (the first this many rows of the training split, a fixed choice). SFT
    /// and KD-on-labels see only these; the distillation rows also see the rest of the training split as prompts whose
    /// answers are hidden and come from the teacher.
    /// </summary>
    public int LabelledExamples { get; init; } = 20;

    /// <summary>Gets the number of unlabelled prompts (the training rows after the labelled ones, answers hidden); <see langword="null"/> = all of them.</summary>
    public int? UnlabelledPrompts { get; init; } = 1000;

    /// <summary>Gets the training seeds: each student row is trained once per seed (student init and data order) and reported as mean ± std.</summary>
    public IReadOnlyList<int> Seeds { get; init; } = [1, 2, 3];

    /// <summary>Gets the student rows to train, by <see cref="QuickstartMethods"/> key; <see langword="null"/> = all of them.</summary>
    public IReadOnlyList<string>? Methods { get; init; }

    /// <summary>Gets λ of on-policy distillation: the probability that a batch's responses are the student's own samples (GKD).</summary>
    public double OnPolicyLambda { get; init; } = 0.5;

    /// <summary>Gets the sampling temperature of the student's on-policy generations (TRL's GKD default, 0.9).</summary>
    public double OnPolicyTemperature { get; init; } = 0.9;

    /// <summary>Gets the dev evaluations per student run (best dev exact-match checkpoint is scored on test; 0 = the last step).</summary>
    public int DevEvaluations { get; init; } = 4;

    /// <summary>Gets the bundled tokenizer used when no <see cref="TeacherPath"/> is given: <c>bpe</c> (512 ids) or <c>bytes</c> (257 ids).</summary>
    public string Tokenizer { get; init; } = "bytes";

    /// <summary>Gets the name of the teacher shipped under <c>samples/teachers/</c> for <see cref="LettersDataset"/> (copied next to the sample's assembly).</summary>
    public const string ShippedTeacher = "letters-4x128";

    /// <summary>Gets the name of the teacher shipped under <c>samples/teachers/</c> for <see cref="BundledDataset"/> (its default task families).</summary>
    public const string BundledTeacher = "bytes-4x128";

    /// <summary>Gets the shipped teacher of <see cref="Dataset"/>.</summary>
    public string DefaultTeacher => TeacherFor(Dataset);

    /// <summary>Gets the name of a built-in dataset's shipped teacher.</summary>
    /// <param name="dataset"><see cref="LettersDataset"/> or <see cref="BundledDataset"/>.</param>
    /// <returns><see cref="BundledTeacher"/> for <see cref="BundledDataset"/>, else <see cref="ShippedTeacher"/>.</returns>
    public static string TeacherFor(string dataset) => dataset == BundledDataset ? BundledTeacher : ShippedTeacher;

    /// <summary>Gets the optimizer steps of every student row (the same for each method).</summary>
    public int Steps { get; init; } = 600;

    /// <summary>Gets the micro-batch size.</summary>
    public int BatchSize { get; init; } = 8;

    /// <summary>Gets the peak learning rate of the student (distillation and SFT).</summary>
    public double LearningRate { get; init; } = 1e-3;

    /// <summary>Gets the number of test examples generated and scored per model.</summary>
    public int EvalExamples { get; init; } = 250;

    /// <summary>Gets the number of dev examples scored to pick each run's best checkpoint (0 = no dev evaluation).</summary>
    public int DevExamples { get; init; } = 100;

    /// <summary>Gets the maximum number of generated tokens per answer.</summary>
    public int MaxNewTokens { get; init; } = 16;

    /// <summary>Gets the maximum tokens per training example (prompt + response + EOS).</summary>
    public int MaxLength { get; init; } = 128;

    /// <summary>Gets the seed (models, data order, dropout).</summary>
    public int Seed { get; init; } = 42;

    /// <summary>Gets the random student's depth.</summary>
    public int StudentLayers { get; init; } = 2;

    /// <summary>Gets the random student's width.</summary>
    public int StudentHidden { get; init; } = 96;

    /// <summary>Gets the number of CPU threads torch uses; <see langword="null"/> = torch's default.</summary>
    public int? Threads { get; init; }

    /// <summary>Gets a value indicating whether to train in bfloat16 (float32 master weights).</summary>
    public bool BFloat16 { get; init; }

    /// <summary>Checks the settings.</summary>
    /// <returns>The problems, empty when valid.</returns>
    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        if (Steps < 1)
        {
            errors.Add($"--steps must be positive (got {Steps}).");
        }

        if (LabelledExamples < 1 || UnlabelledPrompts < 0 || Seeds.Count == 0 || DevEvaluations < 0)
        {
            errors.Add($"--labelled must be positive, --unlabelled non-negative, --seeds non-empty, --dev-evaluations non-negative (got {LabelledExamples}, {UnlabelledPrompts}, {Seeds.Count} seeds, {DevEvaluations}).");
        }

        if (OnPolicyLambda is < 0 or > 1 || OnPolicyTemperature <= 0)
        {
            errors.Add($"--lambda must be in [0, 1] and --on-policy-temperature positive (got {OnPolicyLambda}, {OnPolicyTemperature}).");
        }

        if (Methods is not null && Methods.FirstOrDefault(m => !QuickstartMethods.All.Any(x => x.Key == m)) is { } unknown)
        {
            errors.Add($"--methods: unknown method '{unknown}' (known: {string.Join(", ", QuickstartMethods.All.Select(m => m.Key))}).");
        }

        if (BatchSize < 1 || EvalExamples < 1 || MaxNewTokens < 1 || MaxLength < 4 || DevExamples < 0)
        {
            errors.Add("--batch-size, --eval-examples, --max-new-tokens must be positive, --max-length at least 4, --dev-examples non-negative.");
        }

        if (Tokenizer is not ("bpe" or "bytes"))
        {
            errors.Add($"--tokenizer must be bpe or bytes (got '{Tokenizer}').");
        }

        if (KdRate is < 0 or > 1 || KdTemperature <= 0)
        {
            errors.Add($"--kd-rate must be in [0, 1] and --kd-temperature positive (got {KdRate}, {KdTemperature}).");
        }

        if (TeacherPath is not null && !File.Exists(Path.Combine(TeacherPath, "config.json")))
        {
            errors.Add($"--teacher '{TeacherPath}' has no config.json.");
        }

        if (StudentPath is not null && !File.Exists(Path.Combine(StudentPath, "config.json")))
        {
            errors.Add($"--student '{StudentPath}' has no config.json.");
        }

        if (Dataset is not (LettersDataset or BundledDataset))
        {
            errors.Add($"--dataset must be {LettersDataset} or {BundledDataset} (got '{Dataset}').");
        }

        if (DataPath is not null && !File.Exists(DataPath))
        {
            errors.Add($"--data '{DataPath}' does not exist.");
        }

        return errors;
    }
}
