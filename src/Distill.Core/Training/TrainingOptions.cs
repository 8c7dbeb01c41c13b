using System.ComponentModel.DataAnnotations;

namespace Distill.Training;

/// <summary>The learning-rate schedule applied after warmup.</summary>
public enum LearningRateScheduleKind
{
    /// <summary>Constant at the base learning rate after warmup.</summary>
    Constant,

    /// <summary>Linear decay from the base learning rate to <see cref="TrainingOptions.MinLearningRate"/> at the last step.</summary>
    Linear,

    /// <summary>Half-cosine decay from the base learning rate to <see cref="TrainingOptions.MinLearningRate"/> (PyTorch <c>CosineAnnealingLR</c>, as DSKD).</summary>
    Cosine,
}

/// <summary>Numeric precision of the training forward and backward pass.</summary>
public enum TrainingPrecision
{
    /// <summary>Everything in float32.</summary>
    Float32,

    /// <summary>
    /// Student, local teacher and objective modules are cast to bfloat16 for compute; AdamW updates float32 master copies of
    /// the trainable parameters (the DeepSpeed bf16 scheme DSKD trains with). Losses still take softmax in float32.
    /// </summary>
    BFloat16,
}

/// <summary>When the trainer's evaluation callback runs (HF Trainer's <c>eval_strategy</c>).</summary>
public enum EvaluationStrategy
{
    /// <summary>
    /// <see cref="Steps"/> when <see cref="TrainingOptions.EvaluateEverySteps"/> is set; otherwise <see cref="Epoch"/> for a run
    /// measured in epochs, and about ten evenly spaced evaluations (every <c>ceil(total steps / 10)</c> steps) for a run
    /// measured in <see cref="TrainingOptions.MaxSteps"/>, where an "epoch" of a small dataset may be a handful of steps.
    /// </summary>
    Auto,

    /// <summary>Never (HF <c>"no"</c>).</summary>
    No,

    /// <summary>Every <see cref="TrainingOptions.EvaluateEverySteps"/> optimizer steps (HF <c>"steps"</c>).</summary>
    Steps,

    /// <summary>At the end of every epoch (HF <c>"epoch"</c>; DSKD evaluates after every epoch).</summary>
    Epoch,
}

/// <summary>
/// Options of <see cref="DistillationTrainer"/>. Defaults follow DSKD's scripts where they exist (AdamW, weight decay 0.01,
/// cosine schedule, clipping at 1.0, per-window token normalisation).
/// </summary>
/// <remarks>
/// Bound through <c>IOptions&lt;TrainingOptions&gt;</c> by <c>AddDistillTrainer()</c> and validated at start
/// (<see cref="Validate"/>). A snapshot is written into every checkpoint as <c>training_options.json</c>.
/// </remarks>
public sealed class TrainingOptions : IValidatableObject
{
    /// <summary>Gets or sets the folder that receives checkpoints, <c>metrics.jsonl</c> and TensorBoard event files.</summary>
    /// <value>The default is <c>runs/distill</c>.</value>
    public string OutputDirectory { get; set; } = TrainingDefaults.OutputDirectory;

    /// <summary>Gets or sets the number of passes over the batch source.</summary>
    /// <value>The default is 1.</value>
    /// <remarks>Ignored when <see cref="MaxSteps"/> is set.</remarks>
    public int Epochs { get; set; } = TrainingDefaults.Epochs;

    /// <summary>Gets or sets the total number of optimizer steps; <see langword="null"/> trains for <see cref="Epochs"/> epochs.</summary>
    /// <value>The default is <see langword="null"/>.</value>
    public int? MaxSteps { get; set; }

    /// <summary>Gets or sets the number of micro-batches accumulated into one optimizer step.</summary>
    /// <value>The default is 1.</value>
    /// <remarks>
    /// Each optimizer step consumes this many consecutive batches of the source; an epoch has
    /// <c>floor(BatchesPerEpoch / GradientAccumulationSteps)</c> steps (DSKD drops the remainder). Gradients are normalised by
    /// the token count of the whole window, summed over the objective's <see cref="ObjectiveResult.Normalizer"/>.
    /// </remarks>
    public int GradientAccumulationSteps { get; set; } = TrainingDefaults.GradientAccumulationSteps;

    /// <summary>Gets or sets the peak learning rate of the student's parameters.</summary>
    /// <value>The default is 1e-4.</value>
    public double LearningRate { get; set; } = TrainingDefaults.LearningRate;

    /// <summary>Gets or sets the peak learning rate of the objective's own parameters (DSKD projectors, CMA attention).</summary>
    /// <value>The default is 1e-3 (DSKD's <c>projector_lr</c>).</value>
    public double ObjectiveLearningRate { get; set; } = TrainingDefaults.ObjectiveLearningRate;

    /// <summary>Gets or sets the decoupled AdamW weight decay of the parameters that decay (all but biases and norms).</summary>
    /// <value>The default is 0.01.</value>
    public double WeightDecay { get; set; } = TrainingDefaults.WeightDecay;

    /// <summary>Gets or sets AdamW's β1.</summary>
    /// <value>The default is 0.9.</value>
    public double Beta1 { get; set; } = TrainingDefaults.Beta1;

    /// <summary>Gets or sets AdamW's β2.</summary>
    /// <value>The default is 0.999 (PyTorch's default; TorchSharp's <c>ParamGroup</c> constructor would use 0.99).</value>
    public double Beta2 { get; set; } = TrainingDefaults.Beta2;

    /// <summary>Gets or sets AdamW's ε.</summary>
    /// <value>The default is 1e-8.</value>
    public double Epsilon { get; set; } = TrainingDefaults.Epsilon;

    /// <summary>
    /// Gets or sets the parameter-name fragments whose parameters get no weight decay (case-insensitive substring match on the
    /// full dotted name).
    /// </summary>
    /// <value>The default is <c>bias</c>, <c>norm</c>, <c>ln_</c>: biases and LayerNorm/RMSNorm weights of GPT-2
    /// (<c>ln_1</c>, <c>ln_2</c>, <c>ln_f</c>, DSKD's rule) and of Llama/Qwen2 (<c>input_layernorm</c>, <c>model.norm</c>, ...).</value>
    public IList<string> NoDecayNameFragments { get; set; } = [.. TrainingDefaults.NoDecayNameFragments];

    /// <summary>Gets or sets the schedule after warmup.</summary>
    /// <value>The default is <see cref="LearningRateScheduleKind.Cosine"/>.</value>
    public LearningRateScheduleKind Schedule { get; set; } = TrainingDefaults.Schedule;

    /// <summary>Gets or sets the fraction of the total steps spent in linear warmup from 0 (HF <c>warmup_ratio</c>).</summary>
    /// <value>The default is 0 (DSKD); ATKD uses 0.03.</value>
    public double WarmupRatio { get; set; } = TrainingDefaults.WarmupRatio;

    /// <summary>Gets or sets the learning rate the linear and cosine schedules decay to (PyTorch <c>eta_min</c>), for every group.</summary>
    /// <value>The default is 0; DSKD uses 1e-7.</value>
    public double MinLearningRate { get; set; } = TrainingDefaults.MinLearningRate;

    /// <summary>Gets or sets the global L2 gradient-norm clipping threshold; <see langword="null"/> disables clipping.</summary>
    /// <value>The default is 1.0.</value>
    public double? MaxGradNorm { get; set; } = TrainingDefaults.MaxGradNorm;

    /// <summary>Gets or sets the compute precision.</summary>
    /// <value>The default is <see cref="TrainingPrecision.Float32"/>.</value>
    public TrainingPrecision Precision { get; set; } = TrainingDefaults.Precision;

    /// <summary>Gets or sets the seed of torch's default generator at the start of a fresh run (dropout and any sampling).</summary>
    /// <value>The default is 42.</value>
    /// <remarks>A resumed run restores the generator state of its checkpoint instead.</remarks>
    public int Seed { get; set; } = TrainingDefaults.Seed;

    /// <summary>Gets or sets how often, in optimizer steps, the loss is read back, logged and reported; 0 disables step logging.</summary>
    /// <value>The default is 10.</value>
    public int LogEverySteps { get; set; } = TrainingDefaults.LogEverySteps;

    /// <summary>Gets or sets when the evaluation callback runs.</summary>
    /// <value>The default is <see cref="EvaluationStrategy.Auto"/>: every epoch for a run in epochs, about ten times for a run in <see cref="MaxSteps"/>.</value>
    /// <remarks>Whatever the strategy, the last step is evaluated too when it would not be otherwise, so the best checkpoint can be the final one.</remarks>
    public EvaluationStrategy EvaluationStrategy { get; set; } = TrainingDefaults.EvaluationStrategy;

    /// <summary>Gets or sets how often, in optimizer steps, the evaluation callback runs under <see cref="EvaluationStrategy.Steps"/> (and <see cref="EvaluationStrategy.Auto"/>).</summary>
    /// <value>The default is <see langword="null"/>.</value>
    public int? EvaluateEverySteps { get; set; }

    /// <summary>
    /// Gets or sets a value indicating whether the student holds the best checkpoint's weights (by <see cref="BestMetric"/>)
    /// when <see cref="DistillationTrainer.Train"/> returns, as HF Trainer's <c>load_best_model_at_end</c>; otherwise it holds
    /// the last step's weights.
    /// </summary>
    /// <value>The default is <see langword="false"/>.</value>
    /// <remarks>Needs <see cref="BestMetric"/> and <see cref="SaveCheckpoints"/>. The objective's own parameters are restored too.</remarks>
    public bool LoadBestModelAtEnd { get; set; }

    /// <summary>Gets or sets what happens when an optimizer step's loss or gradient norm is NaN or infinite.</summary>
    /// <value>The default is <see cref="NonFiniteStepPolicy.Stop"/>.</value>
    /// <remarks>The check reads one boolean back from the device per optimizer step; <see cref="NonFiniteStepPolicy.Ignore"/> skips it.</remarks>
    public NonFiniteStepPolicy OnNonFiniteStep { get; set; } = TrainingDefaults.OnNonFiniteStep;

    /// <summary>
    /// Gets or sets a value indicating whether the next micro-batch (source, batch transforms, teacher) is prepared on a
    /// worker thread while the current one trains.
    /// </summary>
    /// <value>The default is <see langword="true"/>.</value>
    /// <remarks>Results do not depend on it. A batch transform that reads the student (<see cref="IBatchTransform.ReadsStudent"/>) turns it off.</remarks>
    public bool PrefetchBatches { get; set; } = TrainingDefaults.PrefetchBatches;

    /// <summary>Gets or sets how often, in optimizer steps, a checkpoint is written; <see langword="null"/> = only at evaluations, epoch ends, cancellation and the end.</summary>
    /// <value>The default is <see langword="null"/>.</value>
    public int? SaveEverySteps { get; set; }

    /// <summary>Gets or sets a value indicating whether checkpoints are written at all.</summary>
    /// <value>The default is <see langword="true"/>.</value>
    public bool SaveCheckpoints { get; set; } = TrainingDefaults.SaveCheckpoints;

    /// <summary>Gets or sets the evaluation metric that ranks checkpoints (e.g. <c>rougeL</c>); <see langword="null"/> keeps no "best" checkpoints.</summary>
    /// <value>The default is <see langword="null"/>.</value>
    public string? BestMetric { get; set; }

    /// <summary>Gets or sets a value indicating whether a larger <see cref="BestMetric"/> is better.</summary>
    /// <value>The default is <see langword="true"/> (ROUGE-L, accuracy); set <see langword="false"/> for a loss or perplexity.</value>
    public bool GreaterIsBetter { get; set; } = TrainingDefaults.GreaterIsBetter;

    /// <summary>Gets or sets how many of the best checkpoints by <see cref="BestMetric"/> are kept.</summary>
    /// <value>The default is 1 (DSKD's <c>keep-best-n-checkpoints</c>).</value>
    public int KeepBestCheckpoints { get; set; } = TrainingDefaults.KeepBestCheckpoints;

    /// <summary>Gets or sets how many of the most recent checkpoints are kept (for resuming), besides the best ones.</summary>
    /// <value>The default is 1.</value>
    public int KeepLastCheckpoints { get; set; } = TrainingDefaults.KeepLastCheckpoints;

    /// <summary>Gets or sets a value indicating whether scalars are written as TensorBoard event files under <c>tensorboard/</c>.</summary>
    /// <value>The default is <see langword="true"/>.</value>
    public bool TensorBoard { get; set; } = TrainingDefaults.TensorBoard;

    /// <summary>Checks the options; returns the problems found (empty when valid).</summary>
    /// <returns>One message per invalid field, naming it.</returns>
    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        void Check(bool ok, string field, string message)
        {
            if (!ok)
            {
                errors.Add($"{nameof(TrainingOptions)}.{field} {message}");
            }
        }

        Check(!string.IsNullOrWhiteSpace(OutputDirectory), nameof(OutputDirectory), "must be a folder path.");
        Check(Epochs >= 1, nameof(Epochs), $"must be at least 1 (got {Epochs}).");
        Check(MaxSteps is null or >= 1, nameof(MaxSteps), $"must be at least 1 when set (got {MaxSteps}).");
        Check(GradientAccumulationSteps >= 1, nameof(GradientAccumulationSteps), $"must be at least 1 (got {GradientAccumulationSteps}).");
        Check(double.IsFinite(LearningRate) && LearningRate >= 0, nameof(LearningRate), $"must be a finite non-negative number (got {LearningRate}).");
        Check(double.IsFinite(ObjectiveLearningRate) && ObjectiveLearningRate >= 0, nameof(ObjectiveLearningRate), $"must be a finite non-negative number (got {ObjectiveLearningRate}).");
        Check(double.IsFinite(WeightDecay) && WeightDecay >= 0, nameof(WeightDecay), $"must be a finite non-negative number (got {WeightDecay}).");
        Check(Beta1 is >= 0 and < 1, nameof(Beta1), $"must be in [0, 1) (got {Beta1}).");
        Check(Beta2 is >= 0 and < 1, nameof(Beta2), $"must be in [0, 1) (got {Beta2}).");
        Check(double.IsFinite(Epsilon) && Epsilon >= 0, nameof(Epsilon), $"must be a finite non-negative number (got {Epsilon}).");
        Check(NoDecayNameFragments is not null, nameof(NoDecayNameFragments), "must not be null.");
        Check(Enum.IsDefined(Schedule), nameof(Schedule), $"is not a known schedule (got {Schedule}).");
        Check(WarmupRatio is >= 0 and < 1, nameof(WarmupRatio), $"must be in [0, 1) (got {WarmupRatio}).");
        Check(double.IsFinite(MinLearningRate) && MinLearningRate >= 0, nameof(MinLearningRate), $"must be a finite non-negative number (got {MinLearningRate}).");
        Check(MaxGradNorm is null || (double.IsFinite(MaxGradNorm.Value) && MaxGradNorm > 0), nameof(MaxGradNorm), $"must be positive when set (got {MaxGradNorm}).");
        Check(Enum.IsDefined(Precision), nameof(Precision), $"is not a known precision (got {Precision}).");
        Check(LogEverySteps >= 0, nameof(LogEverySteps), $"must be 0 (off) or positive (got {LogEverySteps}).");
        Check(EvaluateEverySteps is null or >= 1, nameof(EvaluateEverySteps), $"must be at least 1 when set (got {EvaluateEverySteps}).");
        Check(Enum.IsDefined(EvaluationStrategy), nameof(EvaluationStrategy), $"is not a known strategy (got {EvaluationStrategy}).");
        Check(EvaluationStrategy != EvaluationStrategy.Steps || EvaluateEverySteps is not null, nameof(EvaluateEverySteps), "must be set when EvaluationStrategy is Steps.");
        Check(Enum.IsDefined(OnNonFiniteStep), nameof(OnNonFiniteStep), $"is not a known policy (got {OnNonFiniteStep}).");
        Check(!LoadBestModelAtEnd || (BestMetric is not null && SaveCheckpoints), nameof(LoadBestModelAtEnd), "needs BestMetric and SaveCheckpoints.");
        Check(SaveEverySteps is null or >= 1, nameof(SaveEverySteps), $"must be at least 1 when set (got {SaveEverySteps}).");
        Check(BestMetric is null || !string.IsNullOrWhiteSpace(BestMetric), nameof(BestMetric), "must be null or a metric name.");
        Check(KeepBestCheckpoints >= 0, nameof(KeepBestCheckpoints), $"must be non-negative (got {KeepBestCheckpoints}).");
        Check(KeepLastCheckpoints >= 1, nameof(KeepLastCheckpoints), $"must be at least 1 (got {KeepLastCheckpoints}).");
        return errors;
    }

    /// <summary>Reports the problems of <see cref="Validate()"/> to the source-generated options validator (DI start-up).</summary>
    /// <param name="validationContext">The validation context.</param>
    /// <returns>One result per invalid field, naming it.</returns>
    IEnumerable<ValidationResult> IValidatableObject.Validate(ValidationContext validationContext) =>
        Validate().Select(error => new ValidationResult(error));

    /// <summary>Throws <see cref="ArgumentException"/> listing every problem when the options are invalid.</summary>
    public void ThrowIfInvalid()
    {
        var errors = Validate();
        if (errors.Count > 0)
        {
            throw new ArgumentException("Invalid training options: " + string.Join(" ", errors));
        }
    }

    /// <summary>Creates an independent copy (the trainer snapshots its options so later edits do not affect a run).</summary>
    /// <returns>A copy of these options.</returns>
    public TrainingOptions Clone()
    {
        var copy = (TrainingOptions)MemberwiseClone();
        copy.NoDecayNameFragments = [.. NoDecayNameFragments];
        return copy;
    }
}

/// <summary>Defaults of <see cref="TrainingOptions"/>.</summary>
internal static class TrainingDefaults
{
    public const string OutputDirectory = "runs/distill";
    public const int Epochs = 1;
    public const int GradientAccumulationSteps = 1;
    public const double LearningRate = 1e-4;
    public const double ObjectiveLearningRate = 1e-3;
    public const double WeightDecay = 0.01;
    public const double Beta1 = 0.9;
    public const double Beta2 = 0.999;
    public const double Epsilon = 1e-8;
    public const LearningRateScheduleKind Schedule = LearningRateScheduleKind.Cosine;
    public const double WarmupRatio = 0;
    public const double MinLearningRate = 0;
    public const double MaxGradNorm = 1.0;
    public const TrainingPrecision Precision = TrainingPrecision.Float32;
    public const int Seed = 42;
    public const int LogEverySteps = 10;
    public const EvaluationStrategy EvaluationStrategy = Training.EvaluationStrategy.Auto;
    public const NonFiniteStepPolicy OnNonFiniteStep = NonFiniteStepPolicy.Stop;
    public const bool PrefetchBatches = true;
    public const bool SaveCheckpoints = true;
    public const bool GreaterIsBetter = true;
    public const int KeepBestCheckpoints = 1;
    public const int KeepLastCheckpoints = 1;
    public const bool TensorBoard = true;
    public static readonly string[] NoDecayNameFragments = ["bias", "norm", "ln_"];
}
