namespace Distill.Training;

/// <summary>What the trainer does when an optimizer step's loss or gradient norm is NaN or infinite.</summary>
/// <remarks>
/// The check costs one device-to-host read of one boolean per optimizer step (not per micro-batch), after the backward
/// passes and before the optimizer updates anything, so a rejected step leaves the weights and optimizer state untouched.
/// </remarks>
public enum NonFiniteStepPolicy
{
    /// <summary>Stop the run with a <see cref="NonFiniteLossException"/> naming the step, the objective and the offending term (the default).</summary>
    Stop,

    /// <summary>Drop the step's gradients, skip the optimizer update, log a warning and go on with the next window.</summary>
    SkipStep,

    /// <summary>No check and no host read: the step is applied whatever its values (a non-finite loss is still logged at the logging cadence).</summary>
    Ignore,
}

/// <summary>Thrown when an optimizer step's loss or gradient norm is not finite under <see cref="NonFiniteStepPolicy.Stop"/>.</summary>
public sealed class NonFiniteLossException : InvalidOperationException
{
    /// <summary>Initializes a new instance of the <see cref="NonFiniteLossException"/> class.</summary>
    public NonFiniteLossException()
    {
        Objective = string.Empty;
    }

    /// <summary>Initializes a new instance of the <see cref="NonFiniteLossException"/> class with a message.</summary>
    /// <param name="message">The message.</param>
    public NonFiniteLossException(string message)
        : base(message)
    {
        Objective = string.Empty;
    }

    /// <summary>Initializes a new instance of the <see cref="NonFiniteLossException"/> class with a message and an inner exception.</summary>
    /// <param name="message">The message.</param>
    /// <param name="innerException">The cause.</param>
    public NonFiniteLossException(string message, Exception innerException)
        : base(message, innerException)
    {
        Objective = string.Empty;
    }

    /// <summary>Initializes a new instance of the <see cref="NonFiniteLossException"/> class for a step.</summary>
    /// <param name="step">The 1-based optimizer step.</param>
    /// <param name="objective">The objective's name.</param>
    /// <param name="message">The message (names the step, the objective and the offending term).</param>
    public NonFiniteLossException(int step, string objective, string message)
        : base(message)
    {
        Step = step;
        Objective = objective;
    }

    /// <summary>Gets the 1-based optimizer step whose loss or gradient was not finite.</summary>
    public int Step { get; }

    /// <summary>Gets the objective's name.</summary>
    public string Objective { get; }
}
