using System.Diagnostics;
using System.Globalization;
using Distill.Data;
using Distill.Eval.Metrics;
using Distill.Models;
using Distill.Training;
using Microsoft.Extensions.Logging;
using static TorchSharp.torch;

namespace Distill.Quickstart;

/// <summary>
/// One student row under one seed: a fresh student (initialised from the seed), <see cref="QuickstartSettings.Steps"/>
/// optimizer steps on the method's data in a seeded order, dev exact match a few times, and the best dev weights kept.
/// </summary>
internal sealed class StudentRun(
    QuickstartSettings settings,
    QuickstartMethod method,
    int seed,
    TokenizedDataset data,
    TokenizedDataset devSet,
    HfTokenizer tokenizer,
    long eos,
    Device device,
    IObjectiveFactory objectives,
    IDistillationTrainerFactory trainers,
    ILoggerFactory loggers)
{
    /// <summary>Gets the teacher the objective or the on-policy transform reads, or null.</summary>
    public ITeacher? Teacher { get; init; }

    /// <summary>Gets the progress callback.</summary>
    public Action<QuickstartProgress>? OnProgress { get; init; }

    /// <summary>Gets the batch transforms to add (on-policy generation), created per run.</summary>
    public Func<CausalLM, IReadOnlyList<IBatchTransform>>? Transforms { get; init; }

    /// <summary>Trains the student and returns it holding the best dev weights (or the last ones without dev evaluation).</summary>
    /// <param name="cancellationToken">Stops training after the current step.</param>
    /// <param name="seconds">Training wall time, dev evaluations included.</param>
    /// <returns>The trained student; the caller disposes it.</returns>
    public CausalLM Train(CancellationToken cancellationToken, out double seconds)
    {
        var student = QuickstartServices.CreateStudent(settings, tokenizer, seed, device);
        student.train();
        var output = Path.Combine(settings.OutputDirectory, "runs", method.Key, "seed-" + seed.ToString(CultureInfo.InvariantCulture));
        if (Directory.Exists(output))
        {
            Directory.Delete(output, recursive: true); // a fresh run each time; resume is the trainer's job, shown in its tests
        }

        var evaluations = settings.DevExamples > 0 && devSet.Count > 0 ? settings.DevEvaluations : 0;
        var trainer = trainers.Create(student, objectives.Create(method.Objective), Teacher, o =>
        {
            o.OutputDirectory = output;
            o.MaxSteps = settings.Steps;
            o.LearningRate = settings.LearningRate;
            o.Seed = seed;
            o.SaveCheckpoints = false; // the best dev weights are kept in memory below; the selected student is saved by the pipeline
            o.EvaluationStrategy = evaluations > 0 ? EvaluationStrategy.Steps : EvaluationStrategy.No;
            o.EvaluateEverySteps = evaluations > 0 ? Math.Max(1, settings.Steps / evaluations) : null;
        });
        foreach (var transform in Transforms?.Invoke(student) ?? [])
        {
            trainer.BatchTransforms.Add(transform);
        }

        var phase = string.Create(CultureInfo.InvariantCulture, $"{method.Row}, seed {seed}");
        trainer.Progress = new SyncProgress<TrainingProgress>(p => OnProgress?.Invoke(new QuickstartProgress(phase, p.Step, p.TotalSteps, p.Loss)));
        Dictionary<string, Tensor>? best = null;
        var bestEm = double.NegativeInfinity;
        if (evaluations > 0)
        {
            trainer.Evaluate = ctx =>
            {
                var (em, _) = QuickstartEvaluation.Generate(student, devSet, eos, settings, loggers, ctx.CancellationToken);
                if (em > bestEm)
                {
                    bestEm = em;
                    DisposeAll(best);
                    best = student.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone().DetachFromDisposeScope());
                }

                return new Dictionary<string, double> { [DskdExactMatchMetric.MetricName] = em };
            };
        }

        var clock = Stopwatch.StartNew();
        var batches = new DistillationBatchSource(data, new BatchSampler(data.Count, Math.Min(settings.BatchSize, data.Count), seed));
        trainer.Train(batches, cancellationToken: cancellationToken);
        seconds = clock.Elapsed.TotalSeconds;
        if (best is not null)
        {
            using (no_grad())
            {
                foreach (var (name, p) in student.state_dict())
                {
                    p.copy_(best[name]);
                }
            }

            DisposeAll(best);
        }

        student.eval();
        return student;
    }

    private static void DisposeAll(Dictionary<string, Tensor>? tensors)
    {
        if (tensors is null)
        {
            return;
        }

        foreach (var t in tensors.Values)
        {
            t.Dispose();
        }
    }
}
