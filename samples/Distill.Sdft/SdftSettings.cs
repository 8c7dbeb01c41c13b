using Distill.Data.Synthesis;

namespace Distill.Sdft;

/// <summary>Everything the SDFT sample does, with defaults that run on the bundled data in a few minutes on 2 CPU cores.</summary>
public sealed record SdftSettings
{
    /// <summary>Gets the run folder (seed-model cache, distilled files, training logs).</summary>
    public string OutputDirectory { get; init; } = "runs/sdft";

    /// <summary>Gets an HF seed-model folder; <see langword="null"/> trains (or loads the cached) bundled seed model.</summary>
    public string? ModelPath { get; init; }

    /// <summary>Gets the task training data (JSON/JSONL); <see langword="null"/> = the bundled task split. Every 10th row is held out as the task test set unless <see cref="TaskTestPath"/> is given.</summary>
    public string? DataPath { get; init; }

    /// <summary>Gets a task test file; <see langword="null"/> = every 10th row of <see cref="DataPath"/>.</summary>
    public string? TaskTestPath { get; init; }

    /// <summary>Gets a held-out general file (JSON/JSONL, scored with ROUGE-L against its responses); required with <see cref="DataPath"/>.</summary>
    public string? GeneralPath { get; init; }

    /// <summary>Gets the SDFT task type (general, math, code, openfunction, or an official dataset name). The bundled task is math.</summary>
    public string Task { get; init; } = "math";

    /// <summary>Gets the official branch to follow.</summary>
    public SdftBranch Branch { get; init; } = SdftBranch.Reproduce;

    /// <summary>Gets the seeds: each runs SDFT generation, LoRA initialisation and data order with its own seed.</summary>
    public IReadOnlyList<int> Seeds { get; init; } = [1, 2, 3];

    /// <summary>Gets the bundled seed model's width.</summary>
    public int SeedHidden { get; init; } = 96;

    /// <summary>Gets the bundled seed model's depth.</summary>
    public int SeedLayers { get; init; } = 2;

    /// <summary>Gets the optimizer steps that train the bundled seed model on the general split.</summary>
    public int SeedSteps { get; init; } = 1000;

    /// <summary>Gets the seed model's peak learning rate.</summary>
    public double SeedLearningRate { get; init; } = 3e-3;

    /// <summary>Gets the fine-tuning epochs; <see langword="null"/> = the task's official count (math: 5).</summary>
    public int? Epochs { get; init; }

    /// <summary>Gets the LoRA fine-tuning learning rate; <see langword="null"/> = the official 1e-4 with a real model, 1e-2 for the bundled one (a tiny random-init model barely moves at 1e-4 in a few steps).</summary>
    public double? LearningRate { get; init; }

    /// <summary>Gets the micro-batch size of fine-tuning; <see langword="null"/> = the official 2 (× 4 accumulation) with a real model, 8 × 1 for the bundled one.</summary>
    public int? BatchSize { get; init; }

    /// <summary>Gets the LoRA target modules; <see langword="null"/> = the official q_proj, v_proj (GPT-2: its fused c_attn).</summary>
    public IReadOnlyList<string>? LoraTargets { get; init; }

    /// <summary>Gets the maximum new tokens of rewrites and evaluation answers; <see langword="null"/> = 512 (official) with a real model, 32 for the bundled one.</summary>
    public int? MaxNewTokens { get; init; }

    /// <summary>Gets the prompts generated together.</summary>
    public int GenerationBatchSize { get; init; } = 32;

    /// <summary>Gets the most task-test and general-test examples scored per model (0 = all).</summary>
    public int EvalExamples { get; init; }

    /// <summary>Gets the most task training rows used (0 = all).</summary>
    public int TrainExamples { get; init; }

    /// <summary>Gets torch CPU threads; <see langword="null"/> = 1 for the bundled model, torch's default otherwise.</summary>
    public int? Threads { get; init; }

    /// <summary>Gets a value indicating whether to retrain the bundled seed model even if a cached one matches.</summary>
    public bool RetrainSeed { get; init; }

    /// <summary>Gets whether this run uses the bundled data and model.</summary>
    public bool Bundled => ModelPath is null && DataPath is null;

    /// <summary>Lists what is wrong with the settings.</summary>
    /// <returns>Problems, empty when valid.</returns>
    public IReadOnlyList<string> Validate()
    {
        var problems = new List<string>();
        if (Seeds.Count == 0)
        {
            problems.Add("--seeds needs at least one seed.");
        }

        if (DataPath is not null && ModelPath is null)
        {
            problems.Add("--data needs --model (the bundled seed model only knows the bundled data).");
        }

        if (ModelPath is not null && DataPath is null)
        {
            problems.Add("--model needs --data (the bundled data is for the bundled seed model).");
        }

        if (DataPath is not null && GeneralPath is null)
        {
            problems.Add("--data needs --general: a held-out general set to measure forgetting on.");
        }

        foreach (var (path, flag) in new[] { (ModelPath, "--model"), (DataPath, "--data"), (TaskTestPath, "--task-test"), (GeneralPath, "--general") })
        {
            if (path is not null && !File.Exists(path) && !Directory.Exists(path))
            {
                problems.Add($"{flag}: '{path}' does not exist.");
            }
        }

        try
        {
            SdftTask.FromName(Task);
        }
        catch (ArgumentException ex)
        {
            problems.Add("--task: " + ex.Message);
        }

        if (SeedSteps < 1 || SeedHidden < 8 || SeedLayers < 1 || GenerationBatchSize < 1 || EvalExamples < 0 || TrainExamples < 0)
        {
            problems.Add("Sizes and steps must be positive.");
        }

        return problems;
    }
}
