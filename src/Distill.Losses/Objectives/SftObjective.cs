using static TorchSharp.torch;

namespace Distill.Losses;

/// <summary>
/// Plain cross-entropy on the batch labels, teacher-free: <c>sft</c>, and <c>seqkd</c> (sequence-level KD = SFT on
/// teacher-generated sequences, as ATKD's <c>seqkd</c> runs a plain HF Trainer).
/// </summary>
internal sealed class SftObjective(string name) : IDistillationObjective
{
    public string Name { get; } = name;

    public ObjectiveRequirements Requirements { get; } = new()
    {
        NeedsTeacher = false,
        NeedsTeacherLogits = false,
        NeedsStudentLogits = true,
        RequiresSameVocabulary = false,
    };

    public nn.Module? Module => null;

    public ObjectiveResult Compute(ObjectiveContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var logits = LogitsGuard.StudentLogits(context, Name);
        var labels = context.Batch.Labels;
        using var scope = NewDisposeScope();
        var mask = TokenReduction.ValidMask(labels);
        var ce = TokenReduction.MaskedSum(CrossEntropy.PerToken(logits, labels), mask);
        return DivergenceKdObjective.Move(ObjectiveResults.Create(ce, mask.sum().item<long>(), ("ce", ce)));
    }
}
