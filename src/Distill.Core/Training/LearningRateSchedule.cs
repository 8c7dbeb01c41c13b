namespace Distill.Training;

/// <summary>
/// Learning rate as a pure function of the optimizer step, so that a resumed run needs only the step number.
/// </summary>
/// <remarks>
/// Step <c>s</c> is 0-based: the first optimizer step uses <c>LearningRate(0)</c>. Warmup is HF's
/// (<c>get_*_schedule_with_warmup</c>): <c>W = ceil(warmupRatio · T)</c> steps rising linearly as <c>base · s / W</c>. After it,
/// with progress <c>π = (s − W) / (T − W)</c>: constant <c>base</c>; linear <c>min + (base − min)(1 − π)</c>; cosine
/// <c>min + (base − min)(1 + cos(π·π))/2</c>, which with no warmup is PyTorch's <c>CosineAnnealingLR(T_max = T, eta_min = min)</c>
/// in closed form (DSKD).
/// </remarks>
public sealed class LearningRateSchedule
{
    /// <summary>Creates a schedule.</summary>
    /// <param name="kind">The decay after warmup.</param>
    /// <param name="totalSteps">Total optimizer steps T (≥ 1).</param>
    /// <param name="warmupRatio">Fraction of T spent warming up, in [0, 1).</param>
    /// <param name="minLearningRate">The floor the linear and cosine schedules decay to (<c>eta_min</c>).</param>
    public LearningRateSchedule(LearningRateScheduleKind kind, int totalSteps, double warmupRatio, double minLearningRate)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(totalSteps, 1);
        if (warmupRatio is < 0 or >= 1)
        {
            throw new ArgumentOutOfRangeException(nameof(warmupRatio), warmupRatio, "The warmup ratio must be in [0, 1).");
        }

        Kind = kind;
        TotalSteps = totalSteps;
        WarmupSteps = (int)Math.Ceiling(warmupRatio * totalSteps);
        MinLearningRate = minLearningRate;
    }

    /// <summary>Gets the decay kind.</summary>
    public LearningRateScheduleKind Kind { get; }

    /// <summary>Gets the total number of optimizer steps.</summary>
    public int TotalSteps { get; }

    /// <summary>Gets the number of warmup steps, <c>ceil(warmupRatio · TotalSteps)</c>.</summary>
    public int WarmupSteps { get; }

    /// <summary>Gets the floor of the linear and cosine schedules.</summary>
    public double MinLearningRate { get; }

    /// <summary>The learning rate of a group with peak <paramref name="baseLearningRate"/> at 0-based optimizer step <paramref name="step"/>.</summary>
    /// <param name="baseLearningRate">The group's peak learning rate.</param>
    /// <param name="step">0-based optimizer step; steps past the end keep the final value.</param>
    /// <returns>The learning rate.</returns>
    public double LearningRate(double baseLearningRate, int step)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(step);
        if (step < WarmupSteps)
        {
            return baseLearningRate * step / WarmupSteps;
        }

        var progress = Math.Min(1.0, (double)(step - WarmupSteps) / Math.Max(1, TotalSteps - WarmupSteps));
        return Kind switch
        {
            LearningRateScheduleKind.Constant => baseLearningRate,
            LearningRateScheduleKind.Linear => MinLearningRate + ((baseLearningRate - MinLearningRate) * (1 - progress)),
            LearningRateScheduleKind.Cosine => MinLearningRate + ((baseLearningRate - MinLearningRate) * 0.5 * (1 + Math.Cos(Math.PI * progress))),
            _ => throw new InvalidOperationException($"Unknown schedule kind {Kind}."),
        };
    }
}
