namespace Distill;

/// <summary>
/// An objective whose trainable parts are sized from the models (DSKD's projectors: student hidden size ↔ teacher hidden
/// size). Hosts and the trainer call <see cref="Initialize"/> once, before reading <see cref="IDistillationObjective.Module"/>
/// to build the optimizer.
/// </summary>
/// <remarks>
/// <see cref="Initialize"/> is idempotent for the same pair of sizes and throws <see cref="InvalidOperationException"/> when
/// called again with different sizes (the parameters already exist). Not thread-safe.
/// </remarks>
public interface IModelAwareObjective : IDistillationObjective
{
    /// <summary>Gets a value indicating whether the objective's parameters exist (after <see cref="Initialize"/>).</summary>
    bool IsInitialized { get; }

    /// <summary>Creates the objective's parameters for this student/teacher pair, on the student's device.</summary>
    /// <param name="student">The student model.</param>
    /// <param name="teacher">The teacher model (needed for its hidden size).</param>
    void Initialize(ICausalLM student, ICausalLM teacher);
}
