namespace Distill.Quickstart;

/// <summary>
/// Everything the quickstart does, with defaults that run end to end on the bundled dataset in a few minutes on 2 CPU cores.
/// </summary>
public sealed record QuickstartSettings
{
    /// <summary>Gets the folder for the teacher cache, checkpoints, metrics and TensorBoard logs.</summary>
    public string OutputDirectory { get; init; } = "runs/quickstart";

    /// <summary>Gets the distillation objective (a name of <c>AddDistillLosses()</c>, e.g. <c>forward_kl</c>, <c>reverse_kl</c>, <c>atkd</c>).</summary>
    public string Objective { get; init; } = "forward_kl";

    /// <summary>Gets α of the divergence objectives (<c>forward_kl</c>, ...): the loss is (1 − α)·CE + α·KD (DSKD <c>--kd-rate</c>).</summary>
    public double KdRate { get; init; } = 0.5;

    /// <summary>Gets the temperature of the divergence objectives (DSKD <c>--kd-temperature</c>; 1.0 here: on the bundled tasks T = 2 gave the student a worse fit).</summary>
    public double KdTemperature { get; init; } = 1.0;

    /// <summary>Gets an HF teacher folder; <see langword="null"/> trains (or loads the cached) bundled teacher.</summary>
    public string? TeacherPath { get; init; }

    /// <summary>Gets an HF student folder; <see langword="null"/> creates a small random GPT-2.</summary>
    public string? StudentPath { get; init; }

    /// <summary>Gets a JSONL file of instruction data (instruction/input/output or prompt/output); <see langword="null"/> = bundled data.</summary>
    public string? DataPath { get; init; }

    /// <summary>Gets the prompt template for <see cref="DataPath"/> (<c>compact</c>, <c>alpaca</c>, <c>dolly</c>, ...).</summary>
    public string Template { get; init; } = "compact";

    /// <summary>
    /// Gets the task families of the bundled data (each example's <c>task</c> field) the quickstart trains, selects and
    /// evaluates on; <see langword="null"/> or empty = every family. Ignored with <see cref="DataPath"/>. The default leaves
    /// out 2-digit <c>add</c>/<c>subtract</c> (70 % of the bundled data) and <c>reverse</c>/<c>sort</c>, which models this
    /// small do not learn for unseen inputs in minutes.
    /// </summary>
    public IReadOnlyList<string>? Tasks { get; init; } = DefaultTasks;

    /// <summary>Gets the default <see cref="Tasks"/>: the families a sub-million-parameter model learns in a few minutes.</summary>
    public static IReadOnlyList<string> DefaultTasks { get; } = ["uppercase", "count", "capital", "opposite", "multiply"];

    /// <summary>Gets the bundled tokenizer used when no <see cref="TeacherPath"/> is given: <c>bpe</c> (512 ids) or <c>bytes</c> (257 ids).</summary>
    public string Tokenizer { get; init; } = "bytes";

    /// <summary>Gets a value indicating whether the student trains through LoRA adapters instead of fully.</summary>
    public bool Lora { get; init; }

    /// <summary>Gets the LoRA rank.</summary>
    public int LoraRank { get; init; } = 8;

    /// <summary>Gets the LoRA alpha.</summary>
    public double LoraAlpha { get; init; } = 16;

    /// <summary>Gets the LoRA target modules; <see langword="null"/> = the attention and MLP projections of the architecture.</summary>
    public IReadOnlyList<string>? LoraTargets { get; init; }

    /// <summary>Gets the optimizer steps used to train the bundled teacher from scratch.</summary>
    public int TeacherSteps { get; init; } = 1200;

    /// <summary>Gets the optimizer steps of distillation (and of the SFT baseline).</summary>
    public int Steps { get; init; } = 300;

    /// <summary>Gets the micro-batch size.</summary>
    public int BatchSize { get; init; } = 32;

    /// <summary>Gets the peak learning rate of the student (distillation and SFT).</summary>
    public double LearningRate { get; init; } = 3e-3;

    /// <summary>Gets the peak learning rate of the bundled teacher.</summary>
    public double TeacherLearningRate { get; init; } = 3e-3;

    /// <summary>Gets the number of test examples generated and scored per model.</summary>
    public int EvalExamples { get; init; } = 200;

    /// <summary>Gets the number of dev examples scored at each epoch end to pick the best checkpoint (0 = no dev evaluation).</summary>
    public int DevExamples { get; init; } = 100;

    /// <summary>Gets the maximum number of generated tokens per answer.</summary>
    public int MaxNewTokens { get; init; } = 16;

    /// <summary>Gets the maximum tokens per training example (prompt + response + EOS).</summary>
    public int MaxLength { get; init; } = 128;

    /// <summary>Gets the seed (models, data order, dropout).</summary>
    public int Seed { get; init; } = 42;

    /// <summary>Gets the bundled teacher's depth.</summary>
    public int TeacherLayers { get; init; } = 4;

    /// <summary>Gets the bundled teacher's width.</summary>
    public int TeacherHidden { get; init; } = 128;

    /// <summary>Gets the random student's depth.</summary>
    public int StudentLayers { get; init; } = 2;

    /// <summary>Gets the random student's width.</summary>
    public int StudentHidden { get; init; } = 96;

    /// <summary>Gets the number of CPU threads torch uses; <see langword="null"/> = torch's default.</summary>
    public int? Threads { get; init; }

    /// <summary>Gets a value indicating whether to train in bfloat16 (float32 master weights).</summary>
    public bool BFloat16 { get; init; }

    /// <summary>Gets a value indicating whether to retrain the bundled teacher even when a cached one matches.</summary>
    public bool RetrainTeacher { get; init; }

    /// <summary>Gets a value indicating whether to also train the SFT baseline (same student, same steps, no teacher).</summary>
    public bool SftBaseline { get; init; } = true;

    /// <summary>Checks the settings.</summary>
    /// <returns>The problems, empty when valid.</returns>
    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        if (TeacherSteps < 1 || Steps < 1)
        {
            errors.Add($"--teacher-steps and --steps must be positive (got {TeacherSteps}, {Steps}).");
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

        if (LoraRank < 1 || LoraAlpha <= 0)
        {
            errors.Add($"--lora-rank must be positive and --lora-alpha > 0 (got {LoraRank}, {LoraAlpha}).");
        }

        if (TeacherPath is not null && !File.Exists(Path.Combine(TeacherPath, "config.json")))
        {
            errors.Add($"--teacher '{TeacherPath}' has no config.json.");
        }

        if (StudentPath is not null && !File.Exists(Path.Combine(StudentPath, "config.json")))
        {
            errors.Add($"--student '{StudentPath}' has no config.json.");
        }

        if (DataPath is not null && !File.Exists(DataPath))
        {
            errors.Add($"--data '{DataPath}' does not exist.");
        }

        return errors;
    }
}
