using Microsoft.Extensions.Logging;
using static TorchSharp.torch;

namespace Distill.Losses;

/// <summary>
/// The objective of a token-level <see cref="ObjectiveDeclaration"/>: <c>LossSum = Σ_terms weight · Σ_scored perToken</c> over
/// full student and teacher logits, normalised by the number of scored tokens (DSKD's and ATKD's token-level mean, TRL's
/// token <c>batchmean</c>). No host read: counts stay on the device.
/// </summary>
internal sealed class TokenLevelObjective : IDistillationObjective
{
    private readonly ObjectiveDeclaration declaration;
    private readonly LossesOptions options;
    private readonly ILogger logger;
    private readonly IReadOnlyList<ObjectiveTerm> terms;
    private readonly bool scoreIgnored;
    private bool sliceLogged;

    internal TokenLevelObjective(ObjectiveDeclaration declaration, LossesOptions options, ILogger logger)
    {
        this.declaration = declaration;
        this.options = options;
        this.logger = logger;
        terms = declaration.Terms!(options);
        scoreIgnored = declaration.ScoresIgnoredPositions?.Invoke(options) ?? false;
    }

    public string Name => declaration.Name;

    public ObjectiveRequirements Requirements => declaration.Requirements;

    public nn.Module? Module => null;

    public void Validate(ObjectiveSetup setup) => ObjectiveChecks.Validate(Name, Requirements, setup, options.SliceToSharedVocabulary, chunked: false);

    public ObjectiveResult Compute(ObjectiveContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        declaration.Check?.Invoke(options);
        Tensor student;
        Tensor? teacher = null;
        if (Requirements.NeedsTeacher)
        {
            (student, teacher) = LogitsGuard.Pair(context, options, Name, logger, ref sliceLogged);
        }
        else
        {
            student = LogitsGuard.StudentLogits(context, Name);
        }

        using var scope = NewDisposeScope();
        var labels = declaration.Labels?.Invoke(options, context.Batch.Labels) ?? context.Batch.Labels;
        var mask = ScoreMask(labels, scoreIgnored);
        var (loss, metrics) = WeightedSum(terms, student, teacher, labels, mask);
        var normalizer = mask.sum().to(ScalarType.Float32);
        if (scoreIgnored)
        {
            // Official ATKD tvd: the mean of an empty selection is NaN (0/0); loss / 1 elsewhere, without a host read.
            loss = loss / normalizer.ne(TorchScalars.Constant(0)).to(ScalarType.Float32);
        }

        if (Requirements.NeedsTeacher && !metrics.ContainsKey("kd"))
        {
            metrics["kd"] = loss;
        }

        return ObjectiveResults.Create(loss, normalizer, mask.sum(), metrics);
    }

    /// <summary>The positions a term is summed over: labels ≠ −100, or the ignored ones for ATKD's official tvd.</summary>
    internal static Tensor ScoreMask(Tensor labels, bool scoreIgnored)
    {
        var mask = TokenReduction.ValidMask(labels);
        return scoreIgnored ? mask.logical_not() : mask;
    }

    /// <summary>Σ weight · masked sum of each term, and the sums by metric name.</summary>
    internal static (Tensor Loss, Dictionary<string, Tensor> Metrics) WeightedSum(IReadOnlyList<ObjectiveTerm> terms, Tensor student, Tensor? teacher, Tensor labels, Tensor mask)
    {
        var metrics = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        Tensor? loss = null;
        foreach (var term in terms)
        {
            var sum = TokenReduction.MaskedSum(term.PerToken(student, teacher, labels), mask);
            metrics[term.Metric] = sum;
            var weighted = terms.Count == 1 && term.Weight == 1.0 ? sum : sum.Mul(term.Weight);
            loss = loss is null ? weighted : loss.Add(weighted);
        }

        return (loss ?? zeros(Array.Empty<long>(), dtype: ScalarType.Float32, device: student.device), metrics);
    }
}
