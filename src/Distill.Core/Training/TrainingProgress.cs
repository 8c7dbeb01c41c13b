namespace Distill.Training;

/// <summary>A progress report of <see cref="DistillationTrainer"/>, sent every <see cref="TrainingOptions.LogEverySteps"/> optimizer steps.</summary>
/// <param name="Step">Optimizer steps completed (1-based after the first step).</param>
/// <param name="TotalSteps">Total optimizer steps of the run.</param>
/// <param name="Epoch">0-based epoch of the step.</param>
/// <param name="Loss">The step's loss: summed loss of the accumulation window divided by its token count.</param>
/// <param name="LossParts">The objective's metrics for the window, each divided by the window's token count like the loss.</param>
/// <param name="LearningRate">The student learning rate the step used.</param>
/// <param name="GradNorm">The global gradient L2 norm before clipping.</param>
/// <param name="Tokens">Tokens (the objective's counts) seen so far in this run, including before a resume.</param>
/// <param name="TokensPerSecond">Token throughput since the start of this process's training.</param>
/// <param name="Elapsed">Wall time since the start of this process's training.</param>
/// <param name="EstimatedRemaining">Estimated time to the last step at the current pace.</param>
public readonly record struct TrainingProgress(
    int Step,
    int TotalSteps,
    int Epoch,
    double Loss,
    IReadOnlyDictionary<string, double> LossParts,
    double LearningRate,
    double GradNorm,
    long Tokens,
    double TokensPerSecond,
    TimeSpan Elapsed,
    TimeSpan EstimatedRemaining);

/// <summary>What the evaluation callback receives. The student is in eval mode and gradients are off while it runs.</summary>
/// <param name="Step">Optimizer steps completed.</param>
/// <param name="Epoch">0-based epoch just trained in.</param>
/// <param name="IsEpochEnd">Whether this evaluation closes an epoch.</param>
/// <param name="Student">The student model.</param>
/// <param name="CancellationToken">The run's cancellation token.</param>
public readonly record struct EvaluationContext(int Step, int Epoch, bool IsEpochEnd, ICausalLM Student, CancellationToken CancellationToken);

/// <summary>How a training run ended.</summary>
public enum TrainingStatus
{
    /// <summary>All steps ran.</summary>
    Completed,

    /// <summary>Cancelled through the token; a checkpoint of the last completed step was written (unless checkpoints are off).</summary>
    Cancelled,
}

/// <summary>The outcome of <see cref="DistillationTrainer.Train"/>.</summary>
/// <param name="Status">Completed or cancelled.</param>
/// <param name="Steps">Optimizer steps completed in total (including before a resume).</param>
/// <param name="LastLoss">The loss of the last step, or NaN when no step ran in this process.</param>
/// <param name="LastCheckpoint">The folder of the last checkpoint written, if any.</param>
/// <param name="BestCheckpoint">The best checkpoint by <see cref="TrainingOptions.BestMetric"/>, if any.</param>
/// <param name="BestMetricValue">Its metric value, if any.</param>
/// <param name="Evaluations">Every evaluation of this process's run: step and metrics.</param>
public sealed record TrainingResult(
    TrainingStatus Status,
    int Steps,
    double LastLoss,
    string? LastCheckpoint,
    string? BestCheckpoint,
    double? BestMetricValue,
    IReadOnlyList<(int Step, IReadOnlyDictionary<string, double> Metrics)> Evaluations);
