using Distill.Data;
using Distill.Models;
using Distill.Training;
using Microsoft.Extensions.DependencyInjection;

namespace Distill.CrossTokenizer;

/// <summary>Model shapes and the shared training loop of the cross-tokenizer sample.</summary>
public static class Models
{
    /// <summary>Maximum sequence length (tokens) of both models and of every tokenised example.</summary>
    public const int MaxLength = 128;

    /// <summary>Maximum prompt length (tokens).</summary>
    public const int MaxPromptLength = 64;

    /// <summary>A small GPT-2 config for a bundled tokenizer (heads of width 32, EOS = BOS = the pad token).</summary>
    /// <param name="tokenizer">The tokenizer (its vocabulary size and pad id).</param>
    /// <param name="layers">Transformer blocks.</param>
    /// <param name="hidden">Hidden size.</param>
    /// <returns>The config.</returns>
    public static Gpt2Config Gpt2(HfTokenizer tokenizer, int layers, int hidden) => Distill.Samples.SampleModels.TinyGpt2(tokenizer, layers, hidden, MaxLength);

    /// <summary>Trains <paramref name="model"/> for <paramref name="steps"/> optimizer steps (AdamW, cosine with 5 % warm-up, clip 1.0, float32, no checkpoints).</summary>
    /// <param name="model">The model to train.</param>
    /// <param name="objective">The objective.</param>
    /// <param name="teacher">The teacher, or null for SFT.</param>
    /// <param name="dataset">The training examples.</param>
    /// <param name="steps">Optimizer steps.</param>
    /// <param name="batchSize">Micro-batch size.</param>
    /// <param name="learningRate">Peak learning rate.</param>
    /// <param name="seed">Seed of the batch order (and of everything the trainer seeds).</param>
    /// <param name="outputDirectory">The trainer's folder (metrics.jsonl).</param>
    /// <param name="progress">Optional step progress.</param>
    /// <param name="cancellationToken">Stops training cleanly.</param>
    /// <returns>The trainer's result.</returns>
    public static TrainingResult Train(
        CausalLM model,
        IDistillationObjective objective,
        ITeacher? teacher,
        TokenizedDataset dataset,
        int steps,
        int batchSize,
        double learningRate,
        int seed,
        string outputDirectory,
        IProgress<TrainingProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        if (Directory.Exists(outputDirectory))
        {
            Directory.Delete(outputDirectory, recursive: true); // a fresh run each time
        }

        model.train();
        var trainer = new DistillationTrainer(model, objective, teacher, new TrainingOptions
        {
            OutputDirectory = outputDirectory,
            MaxSteps = steps,
            LearningRate = learningRate,
            MinLearningRate = 1e-5,
            WarmupRatio = 0.05,
            Schedule = LearningRateScheduleKind.Cosine,
            MaxGradNorm = 1.0,
            SaveCheckpoints = false,
            TensorBoard = false,
            LogEverySteps = 50,
            Precision = TrainingPrecision.Float32,
            Seed = seed,
            // Batches are prepared on the training thread: with prefetching on, one default run crashed in min_ed's batch
            // preparation on the prefetch thread (a libtorch Scalar conversion error at step 176, not reproduced in the
            // per-seed runs); see docs/cross-tokenizer.md.
            PrefetchBatches = false,
        })
        {
            Progress = progress,
        };
        var source = new DistillationBatchSource(dataset, new BatchSampler(dataset.Count, batchSize, seed));
        var result = trainer.Train(source, cancellationToken: cancellationToken);
        model.eval();
        return result;
    }
}

/// <summary>The library's objective factory (every objective of <c>AddDistillLosses</c> and <c>AddDistillCrossTokenizer</c>, official defaults).</summary>
internal static class Objectives
{
    private static readonly Lazy<ServiceProvider> Provider = new(() =>
        new ServiceCollection().AddDistill(o => o.Threads = 1).AddDistillLosses().AddDistillCrossTokenizer().Services.BuildServiceProvider());

    /// <summary>Creates an objective by name.</summary>
    /// <param name="name">An objective name (<c>sft</c>, <c>uld</c>, <c>uld_dskd</c>, <c>dskd_cma</c>, ...).</param>
    /// <returns>A fresh objective.</returns>
    public static IDistillationObjective Create(string name) => Provider.Value.GetRequiredService<IObjectiveFactory>().Create(name);
}
