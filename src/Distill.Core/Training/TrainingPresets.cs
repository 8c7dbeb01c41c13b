namespace Distill.Training;

/// <summary>Named <see cref="TrainingOptions"/> presets that reproduce the official scripts of a paper.</summary>
public static class TrainingPresets
{
    /// <summary>The maximum sequence length of the ATKD scripts (<c>--model_max_length 512</c>); apply it when tokenizing the data.</summary>
    public const int AtkdMaxLength = 512;

    /// <summary>
    /// ATKD's <c>scripts/distillation.sh</c>: AdamW (<c>adamw_torch</c>), learning rate 2e-5, cosine schedule with warmup ratio
    /// 0.03, 3 epochs, gradient accumulation 2, weight decay 0 (maximum length <see cref="AtkdMaxLength"/> is a data setting).
    /// Everything else keeps the <see cref="TrainingOptions"/> defaults, which match the HF <c>TrainingArguments</c> the script
    /// leaves alone (β = (0.9, 0.999), ε = 1e-8, gradient clipping at 1.0).
    /// </summary>
    /// <param name="outputDirectory">The run's output folder; <see langword="null"/> keeps the default.</param>
    /// <returns>New options.</returns>
    public static TrainingOptions Atkd(string? outputDirectory = null)
    {
        var o = new TrainingOptions
        {
            LearningRate = 2e-5,
            Schedule = LearningRateScheduleKind.Cosine,
            WarmupRatio = 0.03,
            Epochs = 3,
            GradientAccumulationSteps = 2,
            WeightDecay = 0,
        };
        if (outputDirectory is not null)
        {
            o.OutputDirectory = outputDirectory;
        }

        return o;
    }
}
