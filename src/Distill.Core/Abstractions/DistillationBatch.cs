using TorchSharp;
using static TorchSharp.torch;

namespace Distill;

/// <summary>
/// One micro-batch for distillation. Labels are <b>aligned with logits</b> (already shifted, the DSKD convention):
/// <c>Labels[b, t]</c> is the target of <c>logits[b, t]</c>, and <see cref="IgnoreIndex"/> (−100) marks positions that are
/// not scored (prompt, padding).
/// </summary>
/// <remarks>
/// For cross-tokenizer objectives the teacher's own tokenisation of the same text travels in the <c>Teacher*</c>
/// tensors (padded independently, so positions are not aligned across vocabularies); for same-tokenizer work they are
/// <see langword="null"/> and the teacher consumes the student tensors. The batch owns its tensors: dispose it, or create
/// it inside a <see cref="DisposeScope"/>.
/// </remarks>
public sealed class DistillationBatch : IDisposable
{
    /// <summary>The label value that marks an ignored position.</summary>
    public const long IgnoreIndex = -100;

    /// <summary>Gets the student input ids, [B, T] int64.</summary>
    public required Tensor InputIds { get; init; }

    /// <summary>Gets the student attention mask, [B, T] int64 (1 = real token, 0 = padding).</summary>
    public required Tensor AttentionMask { get; init; }

    /// <summary>Gets the student labels, [B, T] int64, aligned with logits; −100 = ignored.</summary>
    public required Tensor Labels { get; init; }

    /// <summary>Gets optional explicit student position ids, [B, T] int64 (needed for left padding).</summary>
    public Tensor? PositionIds { get; init; }

    /// <summary>Gets the teacher input ids for cross-tokenizer batches, [B, T'] int64; <see langword="null"/> when teacher and student share a tokenizer.</summary>
    public Tensor? TeacherInputIds { get; init; }

    /// <summary>Gets the teacher attention mask, [B, T'] int64.</summary>
    public Tensor? TeacherAttentionMask { get; init; }

    /// <summary>Gets the teacher labels, [B, T'] int64, aligned with the teacher's logits.</summary>
    public Tensor? TeacherLabels { get; init; }

    /// <summary>Gets optional teacher position ids, [B, T'] int64.</summary>
    public Tensor? TeacherPositionIds { get; init; }

    /// <summary>Gets the dataset index (or another stable id) of each row, or <see langword="null"/> when the source has none.</summary>
    /// <remarks>Batch transforms and cached or remote teachers key their per-example work on it.</remarks>
    public IReadOnlyList<long>? ExampleIds { get; init; }

    /// <summary>Gets the character-span alignment of each row (cross-tokenizer batches), or <see langword="null"/>.</summary>
    public IReadOnlyList<SpanAlignment>? SpanAlignments { get; init; }

    /// <summary>Gets the precomputed MinED alignment of each row (read by <c>min_ed</c>), or <see langword="null"/>.</summary>
    public IReadOnlyList<MinEdAlignment>? MinEdAlignments { get; init; }

    /// <summary>Gets the batch size.</summary>
    public long BatchSize => InputIds.shape[0];

    /// <summary>Gets a value indicating whether the teacher has its own tokenisation in this batch.</summary>
    public bool HasTeacherTokens => TeacherInputIds is not null;

    /// <summary>
    /// Checks every input id is in [0, vocabulary size) and every label is <see cref="IgnoreIndex"/> or in range, for the
    /// student and (when present) the teacher tokens, so a bad id fails here with its row and position instead of inside an
    /// embedding lookup. Synchronises with the device.
    /// </summary>
    /// <param name="studentVocabSize">The student model's vocabulary size.</param>
    /// <param name="teacherVocabSize">The teacher model's vocabulary size for <c>Teacher*</c> tensors; <see langword="null"/> skips them.</param>
    /// <exception cref="InvalidDataException">An id is out of range; the message names the tensor, row, position and id.</exception>
    public void EnsureTokenIdsInRange(long studentVocabSize, long? teacherVocabSize = null)
    {
        Check(InputIds, nameof(InputIds), studentVocabSize, labels: false);
        Check(Labels, nameof(Labels), studentVocabSize, labels: true);
        if (teacherVocabSize is { } tv)
        {
            if (TeacherInputIds is not null)
            {
                Check(TeacherInputIds, nameof(TeacherInputIds), tv, labels: false);
            }

            if (TeacherLabels is not null)
            {
                Check(TeacherLabels, nameof(TeacherLabels), tv, labels: true);
            }
        }

        static void Check(Tensor ids, string name, long vocab, bool labels)
        {
            using var scope = NewDisposeScope();
            var bad = ids.lt(TorchScalars.Constant(0)).logical_or(ids.Ge(vocab));
            if (labels)
            {
                bad = bad.logical_and(ids.ne(TorchScalars.Constant(IgnoreIndex)));
            }

            if (!bad.any().item<bool>())
            {
                return;
            }

            var at = bad.nonzero()[0].cpu();
            var row = at[0].item<long>();
            var position = at.shape[0] > 1 ? at[1].item<long>() : 0;
            var value = ids.shape.Length > 1 ? ids[row, position].item<long>() : ids[row].item<long>();
            throw new InvalidDataException($"Batch {name}[{row}, {position}] = {value} is outside the vocabulary [0, {vocab}){(labels ? $" (and is not the ignore index {IgnoreIndex})" : string.Empty)}.");
        }
    }

    /// <summary>Counts the positions that are scored (labels ≠ −100). Synchronises with the device.</summary>
    public long CountValidTokens() => Labels.ne(TorchScalars.Constant(IgnoreIndex)).sum().item<long>();

    /// <summary>Moves every tensor to <paramref name="device"/>, returning a new batch (this one is unchanged).</summary>
    public DistillationBatch To(Device device) => new()
    {
        InputIds = InputIds.to(device),
        AttentionMask = AttentionMask.to(device),
        Labels = Labels.to(device),
        PositionIds = PositionIds?.to(device),
        TeacherInputIds = TeacherInputIds?.to(device),
        TeacherAttentionMask = TeacherAttentionMask?.to(device),
        TeacherLabels = TeacherLabels?.to(device),
        TeacherPositionIds = TeacherPositionIds?.to(device),
        ExampleIds = ExampleIds,
        SpanAlignments = SpanAlignments,
        MinEdAlignments = MinEdAlignments,
    };

    /// <inheritdoc />
    public void Dispose()
    {
        InputIds.Dispose();
        AttentionMask.Dispose();
        Labels.Dispose();
        PositionIds?.Dispose();
        TeacherInputIds?.Dispose();
        TeacherAttentionMask?.Dispose();
        TeacherLabels?.Dispose();
        TeacherPositionIds?.Dispose();
    }
}
