using Distill.Training;

namespace Distill.Data.Synthesis;

/// <summary>
/// The official SDFT fine-tuning hyper-parameters (<c>scripts/&lt;dataset&gt;/sdft.sh</c> and <c>sft.sh</c>, identical for
/// SFT and SDFT; LLaMA-Factory defaults where the scripts set nothing): LoRA r = 8, α = 16, targets <c>q_proj,v_proj</c>,
/// dropout 0.1 (<c>reproduce</c>) or 0 (<c>main</c>); AdamW, lr 1e-4, cosine, no warmup, no weight decay, gradient
/// clipping 1.0, batch 2 × 4 accumulation, 2 or 5 epochs by task; plain cross-entropy on the response + EOS.
/// </summary>
public static class SdftPreset
{
    /// <summary>The LoRA rank (LLaMA-Factory <c>lora_rank</c> default).</summary>
    public const int LoraRank = 8;

    /// <summary>The LoRA alpha (LLaMA-Factory: <c>lora_alpha = None → rank · 2</c>).</summary>
    public const double LoraAlpha = 16;

    /// <summary>The per-device batch size of the scripts.</summary>
    public const int BatchSize = 2;

    /// <summary>The gradient accumulation of the scripts (effective batch 8 on one GPU).</summary>
    public const int GradientAccumulationSteps = 4;

    /// <summary>The learning rate of the scripts.</summary>
    public const double LearningRate = 1e-4;

    /// <summary>The objective: plain cross-entropy on the response tokens (Distill.Losses <c>sft</c>).</summary>
    public const string Objective = "sft";

    /// <summary>Gets the LoRA target modules of the scripts (<c>--lora_target q_proj,v_proj</c>).</summary>
    public static IReadOnlyList<string> LoraTargetModules { get; } = ["q_proj", "v_proj"];

    /// <summary>The LoRA dropout of a branch's LLaMA-Factory: 0.1 on <c>reproduce</c>, 0 on <c>main</c>.</summary>
    /// <param name="branch">The branch.</param>
    /// <returns>The dropout probability.</returns>
    public static double LoraDropout(SdftBranch branch) => branch == SdftBranch.Reproduce ? 0.1 : 0.0;

    /// <summary>Applies the trainer settings (epochs from <paramref name="task"/>); output folder, steps limits and logging are left alone.</summary>
    /// <param name="options">The trainer options to set.</param>
    /// <param name="task">The task type (its official epoch count).</param>
    public static void Apply(TrainingOptions options, SdftTask task)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(task);
        options.Epochs = task.Epochs;
        options.LearningRate = LearningRate;
        options.GradientAccumulationSteps = GradientAccumulationSteps;
        options.Schedule = LearningRateScheduleKind.Cosine;
        options.WarmupRatio = 0;
        options.MinLearningRate = 0;
        options.WeightDecay = 0;
        options.Beta1 = 0.9;
        options.Beta2 = 0.999;
        options.Epsilon = 1e-8;
        options.MaxGradNorm = 1.0;
    }
}
