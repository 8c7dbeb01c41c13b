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
    /// <returns>The summed loss, its normaliser, the scored-token count and metrics.</returns>
    ObjectiveResult Compute(ObjectiveContext context);

    /// <summary>
    /// Checks, once before training, that the objective can work with this student and teacher (vocabulary sizes,
    /// teacher capabilities such as sparse top-k targets, teacher tokens or alignments). This is the one place where an
    /// objective's compatibility rules live; it throws <see cref="InvalidOperationException"/> naming the mismatch.
    /// </summary>
    /// <param name="setup">What is known about the student and the teacher before the first batch.</param>
    void Validate(ObjectiveSetup setup)
    {
    }
}

/// <summary>What is known about a training setup before the first batch; the input of <see cref="IDistillationObjective.Validate"/>.</summary>
public sealed record ObjectiveSetup
{
    /// <summary>Gets the student's vocabulary size (its logits' last dimension).</summary>
    public required int StudentVocabularySize { get; init; }

    /// <summary>Gets what the teacher provides, or <see langword="null"/> when there is no teacher.</summary>
    public TeacherInfo? Teacher { get; init; }
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

    /// <summary>Gets the student model (lm_head, embeddings), or <see langword="null"/>: logits-only objectives do not read it; fused kernels and DSKD do.</summary>
    public ICausalLM? StudentModel { get; init; }

    /// <summary>Gets the teacher's local model (<see cref="ITeacher.Model"/>), or <see langword="null"/> for a cache or server teacher.</summary>
    public ICausalLM? TeacherModel { get; init; }
}

/// <summary>An objective's result for one micro-batch. Every value is a scalar tensor on the batch's device, so the trainer
/// accumulates a window without reading anything back to the host.</summary>
/// <param name="LossSum">Scalar float32 tensor: the summed loss (with gradient).</param>
/// <param name="Normalizer">Scalar float32 tensor: what this sum is normalised by. The trainer sums it over the
/// accumulation window and divides the window's loss by that sum: the scored-token count for token-normalised
/// objectives, 1 for objectives whose loss is already a per-micro-batch mean (ULD).</param>
/// <param name="ScoredTokens">Scalar int64 tensor: the real number of scored tokens (labels ≠ −100), for
/// <c>tokens</c> and <c>tokens_per_s</c>.</param>
/// <param name="Metrics">Named detached scalar tensors (e.g. <c>ce</c>, <c>kd</c>), read by the trainer only when it logs.</param>
public sealed record ObjectiveResult(Tensor LossSum, Tensor Normalizer, Tensor ScoredTokens, IReadOnlyDictionary<string, Tensor> Metrics)
{
    /// <summary>Builds the common, token-normalised result: the normaliser and the scored-token count are both the
    /// number of positions of <paramref name="labels"/> that are not <see cref="DistillationBatch.IgnoreIndex"/>.</summary>
    /// <param name="lossSum">The summed loss (with gradient).</param>
    /// <param name="labels">The labels the sum is over, aligned with logits.</param>
    /// <param name="metrics">Named scalar metrics; they are detached here.</param>
    /// <returns>The result, computed on the labels' device without a host read.</returns>
    public static ObjectiveResult FromTokens(Tensor lossSum, Tensor labels, IReadOnlyDictionary<string, Tensor> metrics)
    {
        ArgumentNullException.ThrowIfNull(lossSum);
        ArgumentNullException.ThrowIfNull(labels);
        ArgumentNullException.ThrowIfNull(metrics);
        var scored = labels.ne(TorchScalars.Constant(DistillationBatch.IgnoreIndex)).sum().to(ScalarType.Int64);
        return new ObjectiveResult(lossSum, scored.to(ScalarType.Float32), scored, Detach(metrics));
    }

    /// <summary>Builds a result whose loss is a per-micro-batch mean: the normaliser is 1 (the trainer then averages
    /// micro-batches), while <paramref name="labels"/> still give the real scored-token count.</summary>
    /// <param name="lossMean">The micro-batch's mean loss (with gradient).</param>
    /// <param name="labels">The labels the loss is over, aligned with logits.</param>
    /// <param name="metrics">Named scalar metrics; they are detached here.</param>
    /// <returns>The result, computed on the labels' device without a host read.</returns>
    public static ObjectiveResult FromMean(Tensor lossMean, Tensor labels, IReadOnlyDictionary<string, Tensor> metrics)
    {
        ArgumentNullException.ThrowIfNull(lossMean);
        ArgumentNullException.ThrowIfNull(labels);
        ArgumentNullException.ThrowIfNull(metrics);
        var scored = labels.ne(TorchScalars.Constant(DistillationBatch.IgnoreIndex)).sum().to(ScalarType.Int64);
        return new ObjectiveResult(lossMean, ones(Array.Empty<long>(), ScalarType.Float32, lossMean.device), scored, Detach(metrics));
    }

    private static Dictionary<string, Tensor> Detach(IReadOnlyDictionary<string, Tensor> metrics)
    {
        var dict = new Dictionary<string, Tensor>(metrics.Count, StringComparer.Ordinal);
        foreach (var (name, value) in metrics)
        {
            dict[name] = value.detach();
        }

        return dict;
    }
}

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

    /// <summary>Gets the log of the probability mass outside the top-k entries, [B, T] (−∞ when the top-k hold all of it).</summary>
    public Tensor? TopKLogTailMass { get; init; }
}

/// <summary>What kinds of signal a teacher can provide.</summary>
[Flags]
public enum TeacherCapabilities
{
    /// <summary>Nothing (a placeholder; a real teacher provides at least one kind).</summary>
    None = 0,

    /// <summary>Full logits over its vocabulary, [B, T, V].</summary>
    DenseLogits = 1,

    /// <summary>Last hidden states plus access to its lm_head (fused kernels, DSKD).</summary>
    HiddenStates = 2,

    /// <summary>Sparse top-k log-probabilities with the log tail mass (offline caches, remote servers).</summary>
    SparseTopK = 4,
}

/// <summary>A teacher's description: what it provides and which vocabulary it speaks.</summary>
public sealed record TeacherInfo
{
    /// <summary>Gets the kinds of signal the teacher provides.</summary>
    public TeacherCapabilities Capabilities { get; init; } = TeacherCapabilities.DenseLogits;

    /// <summary>Gets the teacher's vocabulary size (its logits' last dimension), or −1 when unknown.</summary>
    public int VocabularySize { get; init; } = -1;

    /// <summary>Gets an identity of the teacher's tokenizer (e.g. a hash of its files), or <see langword="null"/> when unknown.</summary>
    public string? TokenizerId { get; init; }

    /// <summary>Gets the teacher's hidden size when it provides hidden states, else <see langword="null"/>.</summary>
    public int? HiddenSize { get; init; }
}

/// <summary>
/// A source of teacher signals: a local frozen model, an offline cache or a remote server.
/// </summary>
/// <remarks>
/// <para>Implementations must not track gradients; callers own the returned tensors.</para>
/// <para>
/// The trainer calls <see cref="InferAsync"/> once per micro-batch, after the batch-preparation stage
/// (<c>IBatchTransform</c>) and, with prefetching on, for the next micro-batch while the current one trains, on a worker
/// thread. A teacher that waits on I/O (a cache file, a server) overrides <see cref="InferAsync"/>; a compute-bound local
/// teacher implements <see cref="Infer"/> only. Either way the output for a batch must not depend on when it is asked
/// (no shared random state), so prefetching and resuming stay exact.
/// </para>
/// </remarks>
public interface ITeacher
{
    /// <summary>Gets what the teacher provides and its vocabulary. The default describes a dense-logits teacher of unknown vocabulary.</summary>
    TeacherInfo Info => new();

    /// <summary>
    /// Gets the local model behind this teacher, or <see langword="null"/> when there is none (cache, server). Objectives
    /// that need the teacher's lm_head, embeddings or hidden size (DSKD, CMA, fused kernels over hidden states) read it
    /// through <see cref="ObjectiveContext.TeacherModel"/>; the trainer uses it to size model-aware objectives and to cast a
    /// local teacher for bf16 training.
    /// </summary>
    ICausalLM? Model => null;

    /// <summary>Computes what <paramref name="requirements"/> asks for on <paramref name="batch"/>.</summary>
    /// <param name="batch">The prepared micro-batch, on the training device.</param>
    /// <param name="requirements">What the objective needs.</param>
    /// <returns>The teacher's output (no gradients), owned by the caller.</returns>
    TeacherOutput Infer(DistillationBatch batch, ObjectiveRequirements requirements);

    /// <summary>Computes what <paramref name="requirements"/> asks for on <paramref name="batch"/> without blocking on I/O.</summary>
    /// <param name="batch">The prepared micro-batch, on the training device.</param>
    /// <param name="requirements">What the objective needs.</param>
    /// <param name="cancellationToken">Cancels the request (the run is stopping).</param>
    /// <returns>The teacher's output (no gradients), owned by the caller. The default runs <see cref="Infer"/> synchronously.</returns>
    Task<TeacherOutput> InferAsync(DistillationBatch batch, ObjectiveRequirements requirements, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        return Task.FromResult(Infer(batch, requirements));
    }
}

/// <summary>Creates objectives by name (the names the papers' scripts use). Registered by <c>AddDistillLosses()</c>.</summary>
public interface IObjectiveFactory
{
    /// <summary>Gets the names that can be created.</summary>
    IReadOnlyCollection<string> Names { get; }

    /// <summary>Creates the objective registered as <paramref name="name"/>; throws <see cref="ArgumentException"/> listing the known names otherwise.</summary>
    IDistillationObjective Create(string name);
}
