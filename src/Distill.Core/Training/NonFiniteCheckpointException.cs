namespace Distill.Training;

/// <summary>
/// Thrown instead of writing a checkpoint whose weights hold NaN or infinity: such a checkpoint could only replace a good
/// one. The message names the step, the file and the tensor.
/// </summary>
public sealed class NonFiniteCheckpointException : InvalidOperationException
{
    /// <summary>Initializes a new instance of the <see cref="NonFiniteCheckpointException"/> class.</summary>
    public NonFiniteCheckpointException()
    {
    }

    /// <summary>Initializes a new instance of the <see cref="NonFiniteCheckpointException"/> class.</summary>
    /// <param name="message">The message.</param>
    public NonFiniteCheckpointException(string message)
        : base(message)
    {
    }

    /// <summary>Initializes a new instance of the <see cref="NonFiniteCheckpointException"/> class.</summary>
    /// <param name="message">The message.</param>
    /// <param name="innerException">The cause.</param>
    public NonFiniteCheckpointException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Initializes a new instance of the <see cref="NonFiniteCheckpointException"/> class.</summary>
    /// <param name="step">The step whose checkpoint was refused.</param>
    /// <param name="file">The checkpoint file, relative to the checkpoint folder.</param>
    /// <param name="tensor">The first non-finite tensor.</param>
    /// <param name="nonFinite">How many of its values are NaN or infinite.</param>
    /// <param name="elements">Its element count.</param>
    public NonFiniteCheckpointException(int step, string file, string tensor, long nonFinite, long elements)
        : base($"Checkpoint for step {step} was not written: tensor '{tensor}' in '{file}' has {nonFinite} non-finite value(s) (NaN or infinity) of {elements}. Training diverged before step {step}; the earlier checkpoints are kept.")
    {
        Step = step;
        File = file;
        Tensor = tensor;
    }

    /// <summary>Gets the step whose checkpoint was refused.</summary>
    public int Step { get; }

    /// <summary>Gets the checkpoint file (relative to the checkpoint folder) holding the non-finite tensor.</summary>
    public string? File { get; }

    /// <summary>Gets the name of the first non-finite tensor.</summary>
    public string? Tensor { get; }
}
