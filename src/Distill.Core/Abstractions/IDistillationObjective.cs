using static TorchSharp.torch;

namespace Distill;

/// <summary>
/// A distillation objective: for one micro-batch, the <b>summed</b> loss over valid positions (labels ≠ −100), already
/// mixed with cross-entropy as its paper does, plus the number of tokens it should be normalised by and named metrics.
/// The trainer divides by the token count of the whole accumulation window (DSKD's token-level normalisation).
/// </summary>
/// <remarks>
/// Objectives with learnable parts (DSKD projectors, CMA attention) expose them through <see cref="Module"/>; the trainer
/// puts those parameters in their own optimizer group and checkpoints them. Objectives are registered in DI and selected
/// by <see cref="Name"/> (the papers' <c>KD_OBJ</c> / <c>--kl_method</c> strings) through <see cref="IObjectiveFactory"/>.
/// Implementations are not thread-safe.
/// </remarks>
public interface IDistillationObjective
{
    /// <summary>Gets the objective's registered name (e.g. <c>forward_kl</c>, <c>atkd</c>, <c>dskd_cma</c>, <c>uld</c>).</summary>
    string Name { get; }

    /// <summary>Gets what the objective needs from the models and the batch.</summary>
    ObjectiveRequirements Requirements { get; }

    /// <summary>Gets the module holding the objective's trainable parameters, or <see langword="null"/> when it has none.</summary>
    nn.Module? Module { get; }

    /// <summary>Computes the loss for one micro-batch.</summary>
    /// <param name="context">Batch, student output, teacher output and the models.</param>
    /// <returns>The summed loss, its token count and metrics.</returns>
    ObjectiveResult Compute(ObjectiveContext context);
}

/// <summary>What an objective needs. The trainer uses it to decide what to compute and to reject incompatible setups early.</summary>
public sealed record ObjectiveRequirements
{
    /// <summary>Gets a value indicating whether a teacher is needed at all (false for SFT and SeqKD).</summary>
    public bool NeedsTeacher { get; init; } = true;

    /// <summary>Gets a value indicating whether full teacher logits [B, T, V] are needed.</summary>
    public bool NeedsTeacherLogits { get; init; } = true;

    /// <summary>Gets a value indicating whether teacher last hidden states are needed (DSKD).</summary>
    public bool NeedsTeacherHiddenStates { get; init; }

    /// <summary>Gets a value indicating whether student logits are needed (false for fused kernels that work from hidden states).</summary>
    public bool NeedsStudentLogits { get; init; } = true;

    /// <summary>Gets a value indicating whether student last hidden states are needed (DSKD, fused kernels).</summary>
    public bool NeedsStudentHiddenStates { get; init; }

    /// <summary>Gets a value indicating whether sparse top-k teacher log-probs are acceptable instead of full logits.</summary>
    public bool AcceptsSparseTopK { get; init; }

    /// <summary>Gets a value indicating whether student and teacher must share a vocabulary (same-tokenizer objectives).</summary>
    public bool RequiresSameVocabulary { get; init; } = true;

    /// <summary>Gets a value indicating whether the batch must carry the teacher's own tokenisation (cross-tokenizer objectives).</summary>
    public bool RequiresTeacherTokens { get; init; }
}

/// <summary>Everything an objective may read for one micro-batch.</summary>
public sealed class ObjectiveContext
{
    /// <summary>Gets the batch.</summary>
    public required DistillationBatch Batch { get; init; }

    /// <summary>Gets the student's forward output (with gradients).</summary>
    public required CausalLMOutput Student { get; init; }

    /// <summary>Gets the teacher's output (no gradients), or <see langword="null"/> for teacher-free objectives.</summary>
    public TeacherOutput? Teacher { get; init; }

    /// <summary>Gets the student model (lm_head, embeddings).</summary>
    public required ICausalLM StudentModel { get; init; }

    /// <summary>Gets the teacher model when it is a local model, else <see langword="null"/>.</summary>
    public ICausalLM? TeacherModel { get; init; }
}

/// <summary>An objective's result for one micro-batch.</summary>
/// <param name="LossSum">Scalar float32 tensor: the summed loss (with gradient).</param>
/// <param name="TokenCount">The number of tokens this sum is over (the trainer's normaliser for this micro-batch).</param>
/// <param name="Metrics">Named detached scalar tensors (e.g. <c>ce</c>, <c>kd</c>), read by the trainer only when it logs.</param>
public sealed record ObjectiveResult(Tensor LossSum, long TokenCount, IReadOnlyDictionary<string, Tensor> Metrics);

/// <summary>What a teacher supplies for a batch. Any field may be null, depending on <see cref="ObjectiveRequirements"/>.</summary>
public sealed class TeacherOutput
{
    /// <summary>Gets full logits, [B, T, V] (no grad).</summary>
    public Tensor? Logits { get; init; }

    /// <summary>Gets last hidden states after the final norm, [B, T, H] (no grad).</summary>
    public Tensor? HiddenStates { get; init; }

    /// <summary>Gets sparse top-k log-probabilities, [B, T, K].</summary>
    public Tensor? TopKLogProbs { get; init; }

    /// <summary>Gets the vocabulary ids of the top-k entries, [B, T, K] int64.</summary>
    public Tensor? TopKIndices { get; init; }

    /// <summary>
    /// Gets the log of the teacher's probability mass outside the top-k entries, log(1 − Σ_k p_k), [B, T] float32
    /// (−inf when the top-k cover the whole distribution).
    /// </summary>
    /// <remarks>Stored with <see cref="TopKLogProbs"/> by the offline cache and the remote teacher, so that sparse objectives can keep a tail bucket.</remarks>
    public Tensor? TopKLogTailMass { get; init; }
}

/// <summary>
/// A source of teacher signals: a local frozen model, an offline cache or a remote server.
/// </summary>
/// <remarks>Implementations must not track gradients; callers own the returned tensors.</remarks>
public interface ITeacher
{
    /// <summary>Computes what <paramref name="requirements"/> asks for on <paramref name="batch"/>.</summary>
    TeacherOutput Infer(DistillationBatch batch, ObjectiveRequirements requirements);
}

/// <summary>Creates objectives by name (the names the papers' scripts use). Registered by <c>AddDistillLosses()</c>.</summary>
public interface IObjectiveFactory
{
    /// <summary>Gets the names that can be created.</summary>
    IReadOnlyCollection<string> Names { get; }

    /// <summary>Creates the objective registered as <paramref name="name"/>; throws <see cref="ArgumentException"/> listing the known names otherwise.</summary>
    IDistillationObjective Create(string name);
}
