using Microsoft.Extensions.Logging;
using static TorchSharp.torch;

namespace Distill.Losses;

/// <summary>
/// ATKD adaptive teaching (<c>--kl_method atkd</c>). Its easy/hard groups are split at the batch median and normalised by
/// their own counts, so the loss is a per-micro-batch mean, not a sum of per-token terms: this objective returns
/// <c>LossSum = L</c> with <c>Normalizer = 1</c> (the trainer then averages the micro-batches of a window, as ATKD's HF
/// Trainer does with <c>loss / gradient_accumulation_steps</c>) and <c>ScoredTokens = N</c>, the real scored tokens.
/// </summary>
internal sealed class AtkdObjective(LossesOptions options, ILogger logger) : IDistillationObjective
{
    private bool sliceLogged;

    public string Name => ObjectiveNames.Atkd;

    public ObjectiveRequirements Requirements => ObjectiveDeclaration.LogitsPair;

    public nn.Module? Module => null;

    public void Validate(ObjectiveSetup setup) => ObjectiveChecks.Validate(Name, Requirements, setup, options.SliceToSharedVocabulary, chunked: false);

    public ObjectiveResult Compute(ObjectiveContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var o = options.Atkd;
        var (student, teacher) = LogitsGuard.Pair(context, options, Name, logger, ref sliceLogged);
        using var scope = NewDisposeScope();
        var labels = AtkdQuirks.Labels(options, context.Batch.Labels);
        var r = Atkd.Compute(student, teacher, labels, o.Alpha, o.StudentTemperature, o.TeacherTemperature,
            o.Setting == AtkdSetting.Reverse, emptyGroupIsNaN: o.OfficialCompatibility);
        var metrics = new Dictionary<string, Tensor>(StringComparer.Ordinal)
        {
            ["kd"] = r.Loss,
            ["easy_tokens"] = r.EasyCount,
            ["hard_tokens"] = r.HardCount,
        };
        return ObjectiveResults.Create(r.Loss, ones(Array.Empty<long>(), ScalarType.Float32, r.Loss.device), r.TokenCount, metrics);
    }
}
