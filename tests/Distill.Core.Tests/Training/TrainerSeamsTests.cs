using System.Collections.Concurrent;
using Distill.Tests.Shared;
using Distill.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Distill.Core.Tests.Training;

/// <summary>The batch-preparation stage, the teacher abstraction, prefetch, the non-finite guard and the evaluation cadence.</summary>
[Collection("Sequential")]
public class TrainerSeamsTests
{
    private const int Vocab = 13;
    private const int Hidden = 16;

    private static TrainingOptions Options(string dir, Action<TrainingOptions>? change = null)
    {
        var o = new TrainingOptions { OutputDirectory = dir, LearningRate = 5e-3, LogEverySteps = 1, TensorBoard = false, Seed = 7 };
        change?.Invoke(o);
        return o;
    }

    private static Dictionary<string, Tensor> Weights(nn.Module m) => m.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone().DetachFromDisposeScope()); // outlives the trainer's scopes

    private static void AssertSameWeights(Dictionary<string, Tensor> a, Dictionary<string, Tensor> b)
    {
        Assert.Equal(a.Keys.Order(), b.Keys.Order());
        foreach (var (k, v) in a)
        {
            Assert.True(v.eq(b[k]).all().item<bool>(), $"{k} differs");
        }
    }

    [Fact]
    public void Train_FakeBatchTransformAndFakeSparseTeacher_PlugInWithoutTouchingTheLoop()
    {
        using var scope = NewDisposeScope();
        using var tmp = new TempFolder();
        var data = new SyntheticBatchSource(examples: 8, batchSize: 2, vocab: Vocab, seed: 3);
        var student = new TinyCausalLM(Vocab, Hidden, seed: 1);
        var teacher = new FakeSparseTeacher(new TinyCausalLM(Vocab, Hidden, seed: 2), k: 4);
        var objective = new SparseForwardKlObjective();
        var transform = new RandomLabelDropTransform();
        var trainer = new DistillationTrainer(student, objective, teacher, Options(tmp.Path, o =>
        {
            o.MaxSteps = 3;
            o.GradientAccumulationSteps = 2;
        }));
        trainer.BatchTransforms.Add(transform);
        var progress = new List<TrainingProgress>();
        trainer.Progress = new SyncProgress<TrainingProgress>(progress.Add);
        var before = Weights(student);

        var result = trainer.Train(data);

        Assert.Equal(TrainingStatus.Completed, result.Status);
        Assert.True(double.IsFinite(result.LastLoss));
        Assert.Contains(Weights(student), kv => !kv.Value.eq(before[kv.Key]).all().item<bool>()); // it learned
        // The objective validated against the teacher's description, once, and saw only sparse targets and no model.
        Assert.Equal(1, objective.ValidateCalls);
        Assert.Equal(TeacherCapabilities.SparseTopK, objective.SeenCapabilities);
        Assert.Equal(6, objective.Calls);
        Assert.Equal(0, objective.CallsWithTeacherModel);
        // The teacher went through the async path (its task completes later) for every micro-batch, in order, after the transform.
        Assert.Equal([(0, 0), (0, 1), (0, 2), (0, 3), (1, 0), (1, 1)], teacher.Seen.Select(s => (s.Epoch, s.Index)));
        Assert.All(teacher.Seen, s => Assert.True(s.SawTransformMarker));
        Assert.Equal([(0, 0), (0, 1), (0, 2), (0, 3), (1, 0), (1, 1)], transform.Contexts.Select(c => (c.Epoch, c.Index)));
        Assert.All(transform.Contexts, c => Assert.Equal(7, c.Seed));
        // tokens count the labels left after the transform: each dropped one label per row.
        Assert.Equal(objective.ScoredTokens, progress[^1].Tokens);
    }

    [Fact]
    public void Train_RandomTransformWithPrefetchOnOrOff_AndResumed_GivesBitIdenticalWeights()
    {
        using var scope = NewDisposeScope();
        using var tmpA = new TempFolder();
        using var tmpB = new TempFolder();
        using var tmpC = new TempFolder();
        TinyCausalLM Run(string dir, bool prefetch, int steps, string? resume, int maxSteps = 6)
        {
            var student = new TinyCausalLM(Vocab, Hidden, seed: 1, dropoutP: 0.1);
            var trainer = new DistillationTrainer(student, new SumForwardKlObjective(), new LocalModelTeacher(new TinyCausalLM(Vocab, Hidden, seed: 2)), Options(dir, o =>
            {
                o.MaxSteps = maxSteps;
                o.PrefetchBatches = prefetch;
                o.SaveEverySteps = 3;
            }));
            trainer.BatchTransforms.Add(new RandomLabelDropTransform());
            using var cts = new CancellationTokenSource();
            if (steps < maxSteps)
            {
                trainer.Progress = new SyncProgress<TrainingProgress>(p =>
                {
                    if (p.Step == steps)
                    {
                        cts.Cancel();
                    }
                });
            }

            trainer.Train(new SyntheticBatchSource(examples: 8, batchSize: 2, vocab: Vocab, seed: 3), resume, cts.Token);
            return student;
        }

        var straight = Weights(Run(tmpA.Path, prefetch: true, 6, null));
        var synchronous = Weights(Run(tmpB.Path, prefetch: false, 6, null));
        AssertSameWeights(straight, synchronous);

        Run(tmpC.Path, prefetch: true, 3, null);
        var resumed = Weights(Run(tmpC.Path, prefetch: true, 6, "latest"));
        AssertSameWeights(straight, resumed);
    }

    [Theory]
    [InlineData(NonFiniteStepPolicy.Stop)]
    [InlineData(NonFiniteStepPolicy.SkipStep)]
    public void Train_NonFiniteTermAtStep3_StopsNamingStepObjectiveAndTerm_OrSkipsTheStep(NonFiniteStepPolicy policy)
    {
        using var scope = NewDisposeScope();
        using var tmp = new TempFolder();
        var student = new TinyCausalLM(Vocab, Hidden, seed: 1);
        var objective = new NaNAtCallObjective(nanAtCall: 3);
        var weights = new List<Dictionary<string, Tensor>>();
        var trainer = new DistillationTrainer(student, objective, null, Options(tmp.Path, o =>
        {
            o.MaxSteps = 4;
            o.OnNonFiniteStep = policy;
        }))
        {
            Progress = new SyncProgress<TrainingProgress>(_ => weights.Add(Weights(student))),
        };
        var data = new SyntheticBatchSource(examples: 8, batchSize: 2, vocab: Vocab, seed: 3);
        if (policy == NonFiniteStepPolicy.Stop)
        {
            var e = Assert.Throws<NonFiniteLossException>(() => trainer.Train(data));
            Assert.Equal(3, e.Step);
            Assert.Equal("test_nan", e.Objective);
            Assert.Contains("Step 3", e.Message);
            Assert.Contains("'test_nan'", e.Message);
            Assert.Contains("bad=NaN", e.Message);
            Assert.DoesNotContain("ce=", e.Message); // the finite term is not blamed
            Assert.Equal(2, weights.Count);
            return;
        }

        var result = trainer.Train(data);
        Assert.Equal(TrainingStatus.Completed, result.Status);
        Assert.Equal(4, weights.Count);
        AssertSameWeights(weights[1], weights[2]); // step 3 changed nothing
        Assert.Contains(weights[3], kv => !kv.Value.eq(weights[2][kv.Key]).all().item<bool>()); // step 4 trained again
        Assert.All(weights[3].Values, v => Assert.True(v.isfinite().all().item<bool>()));
    }

    [Fact]
    public void Train_ObjectiveThrows_MessageNamesTheStepEpochAndMicroBatch()
    {
        using var scope = NewDisposeScope();
        using var tmp = new TempFolder();
        var trainer = new DistillationTrainer(new TinyCausalLM(Vocab, Hidden, seed: 1), new NaNAtCallObjective(nanAtCall: 2, throwInstead: true), null, Options(tmp.Path, o => o.MaxSteps = 3));
        var e = Assert.Throws<InvalidOperationException>(() => trainer.Train(new SyntheticBatchSource(examples: 8, batchSize: 2, vocab: Vocab, seed: 3)));
        Assert.Contains("Step 2 (epoch 0, micro-batch 1)", e.Message);
        Assert.Contains("teacher logits contain NaN", e.Message);
        Assert.IsType<ArgumentException>(e.InnerException);
    }

    [Theory]
    [InlineData(EvaluationStrategy.Auto, null, 30, null, new[] { 3, 6, 9, 12, 15, 18, 21, 24, 27, 30 })] // ~10 in a MaxSteps run, not 15 epoch ends
    [InlineData(EvaluationStrategy.Auto, null, null, 3, new[] { 2, 4, 6 })] // epoch ends in an epoch run
    [InlineData(EvaluationStrategy.Auto, 4, 10, null, new[] { 4, 8, 10 })] // EvaluateEverySteps wins, and the last step is evaluated
    [InlineData(EvaluationStrategy.Epoch, null, 5, null, new[] { 2, 4, 5 })]
    [InlineData(EvaluationStrategy.No, null, 5, null, new int[0])]
    public void Train_EvaluationStrategy_EvaluatesAtTheExpectedSteps(EvaluationStrategy strategy, int? every, int? maxSteps, int? epochs, int[] expected)
    {
        using var scope = NewDisposeScope();
        using var tmp = new TempFolder();
        var trainer = new DistillationTrainer(new TinyCausalLM(Vocab, Hidden, seed: 1), new SumCrossEntropyObjective(), null, Options(tmp.Path, o =>
        {
            o.EvaluationStrategy = strategy;
            o.EvaluateEverySteps = every;
            o.MaxSteps = maxSteps;
            o.Epochs = epochs ?? 1;
            o.SaveCheckpoints = false;
            o.LogEverySteps = 0;
        }))
        {
            Evaluate = _ => new Dictionary<string, double> { ["x"] = 1 },
        };
        var result = trainer.Train(new SyntheticBatchSource(examples: 4, batchSize: 2, vocab: Vocab, seed: 3)); // 2 steps per epoch
        Assert.Equal(expected, result.Evaluations.Select(e => e.Step));
    }

    [Fact]
    public void Train_LoadBestModelAtEnd_LeavesTheBestCheckpointsWeightsInTheModel()
    {
        using var scope = NewDisposeScope();
        using var tmp = new TempFolder();
        var scores = new[] { 0.1, 0.9, 0.3, 0.2 };
        var student = new TinyCausalLM(Vocab, Hidden, seed: 1);
        var atStep = new Dictionary<int, Dictionary<string, Tensor>>();
        var trainer = new DistillationTrainer(student, new SumCrossEntropyObjective(), null, Options(tmp.Path, o =>
        {
            o.MaxSteps = 4;
            o.EvaluationStrategy = EvaluationStrategy.Steps;
            o.EvaluateEverySteps = 1;
            o.BestMetric = "score";
            o.LoadBestModelAtEnd = true;
        }))
        {
            Evaluate = ctx =>
            {
                atStep[ctx.Step] = Weights(student);
                return new Dictionary<string, double> { ["score"] = scores[ctx.Step - 1] };
            },
        };
        var result = trainer.Train(new SyntheticBatchSource(examples: 8, batchSize: 2, vocab: Vocab, seed: 3));
        Assert.Equal(0.9, result.BestMetricValue);
        AssertSameWeights(atStep[2], Weights(student));
        Assert.Contains(atStep[4], kv => !kv.Value.eq(atStep[2][kv.Key]).all().item<bool>());
    }

    [Fact]
    public void Options_LoadBestModelAtEndWithoutBestMetric_IsInvalid()
    {
        var o = new TrainingOptions { LoadBestModelAtEnd = true };
        Assert.Contains(o.Validate(), e => e.Contains(nameof(TrainingOptions.LoadBestModelAtEnd), StringComparison.Ordinal));
        o = new TrainingOptions { EvaluationStrategy = EvaluationStrategy.Steps };
        Assert.Contains(o.Validate(), e => e.Contains(nameof(TrainingOptions.EvaluateEverySteps), StringComparison.Ordinal));
    }

    [Fact]
    public void Train_MeanNormalisedObjective_CountsRealTokens()
    {
        using var scope = NewDisposeScope();
        using var tmp = new TempFolder();
        var data = new SyntheticBatchSource(examples: 8, batchSize: 2, vocab: Vocab, seed: 3);
        long expected = 0;
        for (var i = 0; i < 4; i++)
        {
            using var b = data.GetBatch(0, i);
            expected += b.CountValidTokens();
        }

        var progress = new List<TrainingProgress>();
        var trainer = new DistillationTrainer(new TinyCausalLM(Vocab, Hidden, seed: 1), new MeanCrossEntropyObjective(), null, Options(tmp.Path, o =>
        {
            o.MaxSteps = 2;
            o.GradientAccumulationSteps = 2;
            o.SaveCheckpoints = false;
        }))
        {
            Progress = new SyncProgress<TrainingProgress>(progress.Add),
        };
        trainer.Train(data);
        Assert.Equal(expected, progress[^1].Tokens); // not 4 "units" of one per micro-batch
    }

    [Fact]
    public void Train_AnyTeacherWithAModel_GivesItsModelToTheObjectiveAndSizesModelAwareObjectives()
    {
        // Not a LocalModelTeacher: the trainer must reach the model through ITeacher.Model only.
        using var scope = NewDisposeScope();
        using var tmp = new TempFolder();
        var teacherModel = new TinyCausalLM(Vocab, 24, seed: 2);
        var objective = new ModelAwareProbe();
        var trainer = new DistillationTrainer(new TinyCausalLM(Vocab, Hidden, seed: 1), objective, new WrappingTeacher(teacherModel), Options(tmp.Path, o =>
        {
            o.MaxSteps = 2;
            o.SaveCheckpoints = false;
        }));
        Assert.Equal((Hidden, 24), objective.InitializedWith);
        Assert.Equal(24, objective.Setup!.Teacher!.HiddenSize);
        trainer.Train(new SyntheticBatchSource(examples: 4, batchSize: 2, vocab: Vocab, seed: 3));
        Assert.Equal(2, objective.Calls);
        Assert.All(objective.TeacherModels, m => Assert.Same(teacherModel, m));
    }

    [Fact]
    public void BatchTransformContext_DerivedSeed_DependsOnEveryCoordinateOnly()
    {
        var a = new BatchTransformContext(1, 2, 3, CPU, CancellationToken.None);
        Assert.Equal(a.DerivedSeed(), new BatchTransformContext(1, 2, 3, CPU, new CancellationTokenSource().Token).DerivedSeed());
        var seeds = new[] { a.DerivedSeed(), a.DerivedSeed(1), a with { Seed = 2 } is var s ? s.DerivedSeed() : 0, (a with { Epoch = 3 }).DerivedSeed(), (a with { Index = 4 }).DerivedSeed() };
        Assert.Equal(seeds.Length, seeds.Distinct().Count());
        using var g1 = a.CreateGenerator();
        using var g2 = a.CreateGenerator();
        Assert.True(torch.rand(4, generator: g1).eq(torch.rand(4, generator: g2)).all().item<bool>());
    }

    /// <summary>Drops one random scored label per row (seeded by the context) and marks the batch for the teacher.</summary>
    private sealed class RandomLabelDropTransform : IBatchTransform
    {
        public ConcurrentQueue<BatchTransformContext> Contexts { get; } = new();

        public DistillationBatch Transform(DistillationBatch batch, BatchTransformContext context)
        {
            Contexts.Enqueue(context);
            var rng = context.CreateRandom();
            var labels = batch.Labels.clone();
            for (var b = 0; b < labels.shape[0]; b++)
            {
                var scored = Enumerable.Range(0, (int)labels.shape[1]).Where(t => labels[b, t].item<long>() != DistillationBatch.IgnoreIndex).ToList();
                labels[b, scored[rng.Next(scored.Count)]] = torch.tensor(DistillationBatch.IgnoreIndex);
            }

            return new DistillationBatch
            {
                InputIds = batch.InputIds,
                AttentionMask = batch.AttentionMask,
                Labels = labels,
                ExampleIds = [-1, -1], // the marker the fake teacher checks
            };
        }
    }

    /// <summary>A sparse top-k teacher whose answers arrive asynchronously (as a cache or server would).</summary>
    private sealed class FakeSparseTeacher(TinyCausalLM model, int k) : ITeacher
    {
        public ConcurrentQueue<(int Epoch, int Index, bool SawTransformMarker)> Seen { get; } = new();

        public TeacherInfo Info => new() { Capabilities = TeacherCapabilities.SparseTopK, VocabularySize = Vocab };

        private int calls;

        public TeacherOutput Infer(DistillationBatch batch, ObjectiveRequirements requirements) => throw new InvalidOperationException("the trainer must use InferAsync");

        public async Task<TeacherOutput> InferAsync(DistillationBatch batch, ObjectiveRequirements requirements, CancellationToken cancellationToken = default)
        {
            var call = calls++;
            var marker = batch.ExampleIds is { } ids && ids.All(i => i == -1);
            await Task.Delay(5, cancellationToken).ConfigureAwait(false); // the I/O wait
            Seen.Enqueue((call < 4 ? 0 : 1, call % 4, marker));
            using var noGrad = no_grad();
            using var scope = NewDisposeScope();
            var logp = model.Forward(new CausalLMInput { InputIds = batch.InputIds, AttentionMask = batch.AttentionMask }).Logits!.log_softmax(-1);
            var (values, indices) = logp.topk(k, dim: -1);
            var tail = (1 - values.exp().sum(-1)).clamp_min(1e-12).log();
            return new TeacherOutput { TopKLogProbs = values.MoveToOuterDisposeScope(), TopKIndices = indices.MoveToOuterDisposeScope(), TopKLogTailMass = tail.MoveToOuterDisposeScope() };
        }
    }

    /// <summary>Forward KL on the teacher's top-k (renormalised), plus CE; accepts sparse targets only.</summary>
    private sealed class SparseForwardKlObjective : IDistillationObjective
    {
        public string Name => "test_sparse_kl";

        public ObjectiveRequirements Requirements { get; } = new() { AcceptsSparseTopK = true };

        public nn.Module? Module => null;

        public int ValidateCalls { get; private set; }

        public TeacherCapabilities SeenCapabilities { get; private set; }

        public int Calls { get; private set; }

        public int CallsWithTeacherModel { get; private set; }

        public long ScoredTokens { get; private set; }

        public void Validate(ObjectiveSetup setup)
        {
            ValidateCalls++;
            SeenCapabilities = setup.Teacher!.Capabilities;
            if (!setup.Teacher.Capabilities.HasFlag(TeacherCapabilities.SparseTopK))
            {
                throw new InvalidOperationException("needs sparse targets");
            }
        }

        public ObjectiveResult Compute(ObjectiveContext context)
        {
            Calls++;
            CallsWithTeacherModel += context.TeacherModel is null ? 0 : 1;
            Assert.Null(context.Teacher!.Logits);
            var logq = context.Student.Logits!.log_softmax(-1);
            var p = context.Teacher.TopKLogProbs!.softmax(-1); // renormalised over the top-k
            var perToken = -(p * logq.gather(-1, context.Teacher.TopKIndices!)).sum(-1);
            var mask = TokenReduction.ValidMask(context.Batch.Labels);
            var kd = TokenReduction.MaskedSum(perToken, mask);
            ScoredTokens += context.Batch.CountValidTokens();
            return ObjectiveResult.FromTokens(kd, context.Batch.Labels, new Dictionary<string, Tensor> { ["kd"] = kd });
        }
    }

    /// <summary>CE whose "bad" term is NaN (or which throws, as a logits guard does) on one call.</summary>
    private sealed class NaNAtCallObjective(int nanAtCall, bool throwInstead = false) : IDistillationObjective
    {
        private int calls;

        public string Name => "test_nan";

        public ObjectiveRequirements Requirements { get; } = new() { NeedsTeacher = false, NeedsTeacherLogits = false };

        public nn.Module? Module => null;

        public ObjectiveResult Compute(ObjectiveContext context)
        {
            calls++;
            if (throwInstead && calls == nanAtCall)
            {
                throw new ArgumentException("Objective 'test_nan': teacher logits contain NaN at (batch 0, token 0).");
            }

            var logits = context.Student.Logits!;
            var ce = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[^1]), context.Batch.Labels.reshape(-1), ignore_index: DistillationBatch.IgnoreIndex, reduction: nn.Reduction.Sum);
            var bad = calls == nanAtCall ? logits.sum() * float.NaN : logits.sum() * 0;
            return ObjectiveResult.FromTokens(ce + bad, context.Batch.Labels, new Dictionary<string, Tensor> { ["ce"] = ce, ["bad"] = bad });
        }
    }

    /// <summary>A teacher of another type than LocalModelTeacher that still exposes its model.</summary>
    private sealed class WrappingTeacher(ICausalLM model) : ITeacher
    {
        public ICausalLM? Model => model;

        public TeacherInfo Info => new() { Capabilities = TeacherCapabilities.DenseLogits | TeacherCapabilities.HiddenStates, VocabularySize = model.Config.VocabSize, HiddenSize = model.Config.HiddenSize };

        public TeacherOutput Infer(DistillationBatch batch, ObjectiveRequirements requirements) =>
            new() { Logits = model.Forward(new CausalLMInput { InputIds = batch.InputIds, AttentionMask = batch.AttentionMask }).Logits };
    }

    /// <summary>Records its initialisation, its setup and the teacher model each call sees; CE as the loss.</summary>
    private sealed class ModelAwareProbe : IModelAwareObjective
    {
        public string Name => "test_model_aware";

        public ObjectiveRequirements Requirements { get; } = new();

        public nn.Module? Module => null;

        public bool IsInitialized => InitializedWith is not null;

        public (int Student, int Teacher)? InitializedWith { get; private set; }

        public ObjectiveSetup? Setup { get; private set; }

        public int Calls { get; private set; }

        public List<ICausalLM?> TeacherModels { get; } = [];

        public void Initialize(ICausalLM student, ICausalLM teacher) => InitializedWith = (student.Config.HiddenSize, teacher.Config.HiddenSize);

        public void Validate(ObjectiveSetup setup) => Setup = setup;

        public ObjectiveResult Compute(ObjectiveContext context)
        {
            Calls++;
            TeacherModels.Add(context.TeacherModel);
            var logits = context.Student.Logits!;
            var ce = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[^1]), context.Batch.Labels.reshape(-1), ignore_index: DistillationBatch.IgnoreIndex, reduction: nn.Reduction.Sum);
            return ObjectiveResult.FromTokens(ce, context.Batch.Labels, new Dictionary<string, Tensor>());
        }
    }

    /// <summary>A per-micro-batch mean (normaliser 1, as ULD), with the real token count.</summary>
    private sealed class MeanCrossEntropyObjective : IDistillationObjective
    {
        public string Name => "test_mean_ce";

        public ObjectiveRequirements Requirements { get; } = new() { NeedsTeacher = false, NeedsTeacherLogits = false };

        public nn.Module? Module => null;

        public ObjectiveResult Compute(ObjectiveContext context)
        {
            var logits = context.Student.Logits!;
            var ce = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[^1]), context.Batch.Labels.reshape(-1), ignore_index: DistillationBatch.IgnoreIndex);
            return ObjectiveResult.FromMean(ce, context.Batch.Labels, new Dictionary<string, Tensor>());
        }
    }
}
