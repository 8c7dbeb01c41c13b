namespace Distill.Training;

/// <summary>The names inside a checkpoint folder <c>OutputDirectory/checkpoints/step-00000042/</c> written by <see cref="DistillationTrainer"/>.</summary>
public static class CheckpointLayout
{
    /// <summary>The folder holding the student's weights, written by the <see cref="IModelCheckpointWriter"/> (an HF model folder with <see cref="HfCheckpointWriter"/>).</summary>
    public const string StudentFolder = "student";

    /// <summary>Position and bookkeeping (step, epoch, batch, learning rates, metrics); its presence marks a complete checkpoint.</summary>
    public const string TrainerStateFile = "trainer_state.json";

    /// <summary>The <see cref="TrainingOptions"/> of the run.</summary>
    public const string TrainingOptionsFile = "training_options.json";

    /// <summary>AdamW state (TorchSharp's optimizer serialisation).</summary>
    public const string OptimizerFile = "optimizer.bin";

    /// <summary>The objective's own parameters (DSKD projectors), when it has any.</summary>
    public const string ObjectiveFile = "objective.bin";

    /// <summary>Float32 master weights of bf16 runs.</summary>
    public const string MasterWeightsFile = "master_weights.bin";

    /// <summary>Torch's generator state.</summary>
    public const string RngFile = "rng.bin";

    /// <summary>Byte length and SHA-256 of every other file, written last (after every file was synced to disk); resume checks it.</summary>
    public const string ManifestFile = "manifest.json";
}
