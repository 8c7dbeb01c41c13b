using System.Globalization;
using static TorchSharp.torch;

namespace Distill.Training;

/// <summary>The loop's helpers: progress reports, the evaluation callback, batch checks, and a one-step entry for tests.</summary>
public sealed partial class DistillationTrainer
{
    /// <summary>
    /// Runs the first optimizer step's forward/backward over <paramref name="data"/> without updating anything (tests of the
    /// normalisation): stops after normalising and clipping the gradients, and reads everything back.
    /// </summary>
    internal StepStats RunStep(IBatchSource data, IReadOnlyList<ParameterGroupSpec> groups)
    {
        var device = DeviceOf(student.Module);
        using var pipeline = new BatchPipeline(data, [.. BatchTransforms], teacher, objective.Requirements, CheckBatch, device, options.Seed, prefetch: false, data.BatchesPerEpoch, options.GradientAccumulationSteps);
        var runner = new TrainingStep(student, objective, teacher, options, groups, null, null, device, logger);
        return runner.Run(pipeline, 0, 0, 0, [.. groups.Select(_ => 0.0)], null, readBack: true, CancellationToken.None, applyUpdate: false);
    }

    private void Report(TrainingMetricsWriter metrics, StepStats stats, int done, int totalSteps, int startStep, int epoch, double lr, long tokens, long startTokens, TimeSpan elapsed)
    {
        var tps = (tokens - startTokens) / Math.Max(elapsed.TotalSeconds, 1e-9);
        var eta = TimeSpan.FromSeconds(Math.Round(elapsed.TotalSeconds / Math.Max(done - startStep, 1) * (totalSteps - done)));
        var values = new Dictionary<string, double>(StringComparer.Ordinal)
        {
            ["loss"] = stats.Loss,
            ["lr"] = lr,
            ["grad_norm"] = stats.GradNorm,
            ["tokens"] = tokens,
            ["tokens_per_s"] = tps,
        };
        foreach (var (k, v) in stats.Parts)
        {
            values[k] = v;
        }

        metrics.Write("train", done, epoch, values);
        if (!double.IsFinite(stats.Loss))
        {
            Log.NonFiniteLoss(logger, stats.Loss, done);
        }

        Log.StepCompleted(logger, done, totalSteps, epoch, stats.Loss, lr, stats.GradNorm, tps, FormatEta(eta));
        Progress?.Report(new TrainingProgress(done, totalSteps, epoch, stats.Loss, stats.Parts, lr, stats.GradNorm, tokens, tps, elapsed, eta));
    }

    private IReadOnlyDictionary<string, double> RunEvaluation(int step, int epoch, bool epochEnd, CancellationToken cancellationToken)
    {
        student.Module.eval();
        try
        {
            using var noGrad = no_grad();
            using var scope = NewDisposeScope();
            var result = Evaluate!(new EvaluationContext(step, epoch, epochEnd, student, cancellationToken));
            Log.Evaluated(logger, step, string.Join(", ", result.Select(kv => string.Create(CultureInfo.InvariantCulture, $"{kv.Key}={kv.Value:G6}"))));
            if (options.BestMetric is { } m && !result.ContainsKey(m))
            {
                throw new InvalidOperationException($"The evaluation callback returned no '{m}' (TrainingOptions.BestMetric); it returned: {string.Join(", ", result.Keys)}.");
            }

            return new Dictionary<string, double>(result, StringComparer.Ordinal);
        }
        finally
        {
            student.Module.train();
        }
    }

    private void CheckBatch(DistillationBatch batch, int epoch, int index)
    {
        if (batch.Labels.shape.Length != 2 || !batch.Labels.shape.SequenceEqual(batch.InputIds.shape))
        {
            throw new InvalidOperationException($"Batch {index} of epoch {epoch}: labels have shape [{string.Join(", ", batch.Labels.shape)}] but input ids [{string.Join(", ", batch.InputIds.shape)}]; labels must be [B, T] and aligned with the logits.");
        }

        if (objective.Requirements.RequiresTeacherTokens && !batch.HasTeacherTokens)
        {
            throw new InvalidOperationException($"Objective '{objective.Name}' needs the teacher's own tokenisation, but batch {index} of epoch {epoch} has no TeacherInputIds (use a cross-tokenizer batch source).");
        }
    }

    private static Device DeviceOf(nn.Module module)
    {
        foreach (var p in module.parameters())
        {
            return p.device;
        }

        return CPU;
    }

    /// <summary>Formats an ETA as <c>hh:mm:ss</c> (<c>d.hh:mm:ss</c> past a day), not TimeSpan's default with fractional ticks.</summary>
    internal static string FormatEta(TimeSpan eta) =>
        eta.TotalDays >= 1 ? eta.ToString(@"d\.hh\:mm\:ss", System.Globalization.CultureInfo.InvariantCulture) : eta.ToString(@"hh\:mm\:ss", System.Globalization.CultureInfo.InvariantCulture);
}
