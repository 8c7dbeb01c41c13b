using System.Text.Json;
using System.Text.Json.Serialization;

namespace Distill.Training;

/// <summary>The position and bookkeeping of a run, written as <c>trainer_state.json</c> in every checkpoint.</summary>
internal sealed record TrainerState
{
    public const int CurrentFormat = 1;

    public int Format { get; init; } = CurrentFormat;

    /// <summary>Optimizer steps completed.</summary>
    public int GlobalStep { get; init; }

    /// <summary>Epoch of the next step (0-based).</summary>
    public int Epoch { get; init; }

    /// <summary>Step within <see cref="Epoch"/> of the next step; its first batch index is <c>StepInEpoch · GradientAccumulationSteps</c>.</summary>
    public int StepInEpoch { get; init; }

    public int TotalSteps { get; init; }

    public int StepsPerEpoch { get; init; }

    public int BatchesPerEpoch { get; init; }

    public int GradientAccumulationSteps { get; init; }

    /// <summary>Tokens (objective counts) trained on so far.</summary>
    public long Tokens { get; init; }

    public string Objective { get; init; } = string.Empty;

    public TrainingPrecision Precision { get; init; }

    public LearningRateScheduleKind Schedule { get; init; }

    public int WarmupSteps { get; init; }

    public double MinLearningRate { get; init; }

    /// <summary>Optimizer groups in order: name, peak and current learning rate, parameter count.</summary>
    public IReadOnlyList<GroupState> Groups { get; init; } = [];

    /// <summary>Evaluation metrics measured at this checkpoint's step, if any.</summary>
    public IReadOnlyDictionary<string, double>? Metrics { get; init; }

    /// <summary>The ranking metric's name and value at this checkpoint, when it was evaluated.</summary>
    public string? BestMetric { get; init; }

    public double? BestMetricValue { get; init; }

    public bool HasObjectiveParameters { get; init; }

    public bool HasMasterWeights { get; init; }

    public string CreatedUtc { get; init; } = string.Empty;

    internal static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower) },
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    public sealed record GroupState(string Name, double BaseLearningRate, double LearningRate, int Parameters);
}
