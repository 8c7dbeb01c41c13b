using System.Text.Json;
using Distill.Tests.Shared;
using Distill.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Distill.Core.Tests.Training;

[Collection("Sequential")]
public class DistillationTrainerTests
{
    private const int Vocab = 13;
    private const int Hidden = 16;

    private static TrainingOptions Options(string dir, Action<TrainingOptions>? change = null)
    {
        var o = new TrainingOptions
        {
            OutputDirectory = dir,
            LearningRate = 5e-3,
            LogEverySteps = 1,
            TensorBoard = false,
            Seed = 7,
        };
        change?.Invoke(o);
        return o;
    }

    private static bool Same(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>();

    [Fact]
    public void Train_TwoSteps_MatchesHandWrittenAdamWWithNoDecayGroups()
    {
        using var scope = NewDisposeScope();
        using var tmp = new TempFolder();
        // ε = 1e-3 (not 1e-8): embedding rows behind the LayerNorm get rounding-noise gradients (~1e-9) whose update g/(|g|+ε)
        // would be ill-conditioned at ε = 1e-8; a large ε also proves the option reaches the optimizer.
        const double lr = 0.01, wd = 0.1, b1 = 0.9, b2 = 0.95, eps = 1e-3;
        var data = new SyntheticBatchSource(examples: 4, batchSize: 2, vocab: Vocab, seed: 5);
        var model = new TinyCausalLM(Vocab, Hidden, seed: 1);
        var reference = new TinyCausalLM(Vocab, Hidden, seed: 2);
        reference.CopyFrom(model);
        var options = Options(tmp.Path, o =>
        {
            o.MaxSteps = 2;
            o.LearningRate = lr;
            o.WeightDecay = wd;
            o.Schedule = LearningRateScheduleKind.Constant;
            o.MaxGradNorm = null;
            o.SaveCheckpoints = false;
            o.Beta1 = b1;
            o.Beta2 = b2;
            o.Epsilon = eps;
        });
        new DistillationTrainer(model, new SumCrossEntropyObjective(), null, options).Train(data);

        // PyTorch AdamW (decoupled decay), in float64: p ← p(1 − lr·wd); m ← β1 m + (1−β1) g; v ← β2 v + (1−β2) g²;
        // p ← p − lr/(1−β1^t) · m / (√v/√(1−β2^t) + ε). wd = 0 for names containing bias / norm / ln_ (DSKD's no-decay rule).
        var shadow = reference.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().to(ScalarType.Float64).clone());
        var m = shadow.ToDictionary(kv => kv.Key, kv => zeros_like(kv.Value));
        var v = shadow.ToDictionary(kv => kv.Key, kv => zeros_like(kv.Value));
        for (var t = 1; t <= 2; t++)
        {
            using (no_grad())
            {
                foreach (var (name, p) in reference.named_parameters())
                {
                    p.copy_(shadow[name]);
                    p.grad = null;
                }
            }

            using var batch = data.GetBatch(0, t - 1);
            var logits = reference.Forward(new CausalLMInput { InputIds = batch.InputIds, AttentionMask = batch.AttentionMask }).Logits!;
            var loss = nn.functional.cross_entropy(logits.reshape(-1, Vocab), batch.Labels.reshape(-1), ignore_index: -100, reduction: nn.Reduction.Sum) / batch.CountValidTokens();
            loss.backward();
            foreach (var (name, p) in reference.named_parameters())
            {
                var g = p.grad!.to(ScalarType.Float64);
                var decay = name.Contains("bias") || name.Contains("ln_") ? 0.0 : wd;
                shadow[name] = shadow[name] * (1 - (lr * decay));
                m[name] = (b1 * m[name]) + ((1 - b1) * g);
                v[name] = (b2 * v[name]) + ((1 - b2) * g * g);
                var denom = (v[name].sqrt() / Math.Sqrt(1 - Math.Pow(b2, t))) + eps;
                shadow[name] = shadow[name] - (lr / (1 - Math.Pow(b1, t)) * m[name] / denom);
            }
        }

        foreach (var (name, p) in model.named_parameters())
        {
            var actual = p.detach().to(ScalarType.Float64);
            var diff = (actual - shadow[name]).abs();
            var maxDiff = diff.max().item<double>();
            var at = diff.argmax().item<long>();
            Assert.True(maxDiff < 2e-6, $"{name}: max |Δ| = {maxDiff} at {at}: actual {actual.flatten()[at].item<double>()} expected {shadow[name].flatten()[at].item<double>()} m {m[name].flatten()[at].item<double>()} v {v[name].flatten()[at].item<double>()}");
        }
    }

    [Fact]
    public void Train_CancelThenResume_ContinuesWithIdenticalLossCurve()
    {
        using var scope = NewDisposeScope();
        using var tmpA = new TempFolder();
        using var tmpB = new TempFolder();
        var data = new SyntheticBatchSource(examples: 12, batchSize: 2, vocab: Vocab, seed: 11); // 6 batches = 3 steps/epoch at GA 2
        TrainingOptions Opts(string dir) => Options(dir, o =>
        {
            o.Epochs = 2;
            o.GradientAccumulationSteps = 2;
            o.WarmupRatio = 0.2;
            o.MinLearningRate = 1e-5;
            o.MaxGradNorm = 0.5;
        });

        // Uninterrupted run A (dropout on, so the RNG state matters; objective with a teacher).
        var teacherA = new TinyCausalLM(Vocab, Hidden, seed: 100);
        var studentA = new TinyCausalLM(Vocab, Hidden, seed: 1, dropoutP: 0.2);
        var lossesA = new List<double>();
        var trainerA = new DistillationTrainer(studentA, new SumForwardKlObjective(), new LocalModelTeacher(teacherA), Opts(tmpA.Path))
        {
            Progress = new SyncProgress<TrainingProgress>(p => lossesA.Add(p.Loss)),
        };
        var resultA = trainerA.Train(data);
        Assert.Equal(TrainingStatus.Completed, resultA.Status);
        Assert.Equal(6, lossesA.Count);

        // Run B: same start, cancelled after step 4 (inside epoch 1).
        using var cts = new CancellationTokenSource();
        var teacherB = new TinyCausalLM(Vocab, Hidden, seed: 100);
        var studentB = new TinyCausalLM(Vocab, Hidden, seed: 1, dropoutP: 0.2);
        var lossesB = new List<double>();
        var trainerB = new DistillationTrainer(studentB, new SumForwardKlObjective(), new LocalModelTeacher(teacherB), Opts(tmpB.Path))
        {
            Progress = new SyncProgress<TrainingProgress>(p =>
            {
                lossesB.Add(p.Loss);
                if (p.Step == 4)
                {
                    cts.Cancel();
                }
            }),
        };
        var resultB = trainerB.Train(data, cancellationToken: cts.Token);
        Assert.Equal(TrainingStatus.Cancelled, resultB.Status);
        Assert.Equal(4, resultB.Steps);
        Assert.EndsWith(CheckpointStore.FolderName(4), resultB.LastCheckpoint);

        // Resume into a differently initialised student (weights must come from the checkpoint), with a different seed set
        // globally (the RNG state must come from the checkpoint too).
        torch.manual_seed(12345);
        var studentC = new TinyCausalLM(Vocab, Hidden, seed: 999, dropoutP: 0.2);
        var calls = data.GetBatchCalls;
        var trainerC = new DistillationTrainer(studentC, new SumForwardKlObjective(), new LocalModelTeacher(new TinyCausalLM(Vocab, Hidden, seed: 100)), Opts(tmpB.Path))
        {
            Progress = new SyncProgress<TrainingProgress>(p => lossesB.Add(p.Loss)),
        };
        var resultC = trainerC.Train(data, resumeFrom: "latest");
        Assert.Equal(TrainingStatus.Completed, resultC.Status);
        Assert.Equal(6, resultC.Steps);
        Assert.Equal(4, data.GetBatchCalls - calls); // only the remaining 2 steps × 2 micro-batches were read

        Assert.Equal(lossesA, lossesB); // bit-identical loss curve
        foreach (var (name, p) in studentA.named_parameters())
        {
            Assert.True(Same(p, studentC.state_dict()[name]), $"{name} differs after resume");
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Train_TenSteps_NativeLiveTensorCountStaysFlat(bool prefetch)
    {
        using var tmp = new TempFolder();
        var data = new SyntheticBatchSource(examples: 24, batchSize: 2, vocab: Vocab, seed: 3);
        var student = new TinyCausalLM(Vocab, Hidden, seed: 1, dropoutP: 0.1);
        var teacher = new TinyCausalLM(Vocab, Hidden, seed: 2);
        var live = new List<long>();
        var trainer = new DistillationTrainer(student, new SumForwardKlObjective(), new LocalModelTeacher(teacher), Options(tmp.Path, o =>
        {
            o.MaxSteps = 12;
            o.SaveEverySteps = 4; // checkpoint writes inside the loop must not leak either
            o.PrefetchBatches = prefetch;
        }))
        {
            Progress = new SyncProgress<TrainingProgress>(_ => live.Add(DisposeScopeManager.Statistics.ThreadTotalLiveCount)),
        };
        trainer.Train(data);
        Assert.Equal(12, live.Count);
        if (!prefetch)
        {
            // After the first steps (lazily created state), 10 further steps leave the live count unchanged.
            Assert.All(live.Skip(2), c => Assert.Equal(live[1], c));
            return;
        }

        // The counts are per thread: with prefetch, each step frees on this thread the batch and teacher tensors a worker
        // thread created (the worker's own intermediates die in its dispose scope), so this thread's count falls by the same
        // amount every step: the 3 batch tensors (ids, mask, labels) and the teacher's logits.
        var deltas = live.Skip(1).Zip(live.Skip(2), (a, b) => b - a).ToList();
        Assert.All(deltas, d => Assert.Equal(-4, d));
    }

    [Fact]
    public void Train_EvaluateEveryStep_KeepsBestNAndLastCheckpointsAtomically()
    {
        using var scope = NewDisposeScope();
        using var tmp = new TempFolder();
        var data = new SyntheticBatchSource(examples: 12, batchSize: 2, vocab: Vocab, seed: 3);
        var scores = new[] { 0.1, 0.5, 0.3, 0.9, 0.2, 0.4 };
        var student = new TinyCausalLM(Vocab, Hidden, seed: 1);
        var evalModes = new List<bool>();
        var trainer = new DistillationTrainer(student, new SumCrossEntropyObjective(), null, Options(tmp.Path, o =>
        {
            o.EvaluateEverySteps = 1;
            o.BestMetric = "rougeL";
            o.KeepBestCheckpoints = 2;
            o.KeepLastCheckpoints = 1;
        }))
        {
            Evaluate = ctx =>
            {
                evalModes.Add(ctx.Student.Module.training || torch.is_grad_enabled());
                return new Dictionary<string, double> { ["rougeL"] = scores[ctx.Step - 1] };
            },
        };
        var result = trainer.Train(data);

        Assert.All(evalModes, m => Assert.False(m)); // eval mode, no grad during evaluation
        Assert.True(student.training); // and back to training afterwards
        var dirs = Directory.GetDirectories(trainer.CheckpointDirectory).Select(Path.GetFileName).Order().ToArray();
        Assert.Equal(new[] { "step-00000002", "step-00000004", "step-00000006" }, dirs); // best two (0.9, 0.5) + last
        Assert.Equal(Path.Combine(trainer.CheckpointDirectory, "step-00000004"), result.BestCheckpoint);
        Assert.Equal(0.9, result.BestMetricValue);
        Assert.Equal(6, result.Evaluations.Count);
        var state = JsonDocument.Parse(File.ReadAllText(Path.Combine(result.BestCheckpoint!, CheckpointStore.StateFile))).RootElement;
        Assert.Equal(4, state.GetProperty("global_step").GetInt32());
        Assert.Equal(0.9, state.GetProperty("best_metric_value").GetDouble());
        foreach (var f in new[] { CheckpointStore.OptimizerFile, CheckpointStore.RngFile, CheckpointStore.OptionsFile, Path.Combine(CheckpointStore.StudentFolder, StateDictCheckpointWriter.FileName) })
        {
            Assert.True(File.Exists(Path.Combine(result.BestCheckpoint!, f)), f);
        }
    }

    [Fact]
    public void Train_WritesMetricsJsonlTensorBoardAndProgress()
    {
        using var scope = NewDisposeScope();
        using var tmp = new TempFolder();
        var data = new SyntheticBatchSource(examples: 8, batchSize: 2, vocab: Vocab, seed: 3);
        var reports = new List<TrainingProgress>();
        var trainer = new DistillationTrainer(new TinyCausalLM(Vocab, Hidden, seed: 1), new SumForwardKlObjective(), new LocalModelTeacher(new TinyCausalLM(Vocab, Hidden, seed: 2)), Options(tmp.Path, o =>
        {
            o.TensorBoard = true;
            o.LogEverySteps = 2;
            o.Epochs = 2; // 4 steps/epoch → 8 steps, logged at 2, 4, 6, 8
        }))
        {
            Progress = new SyncProgress<TrainingProgress>(reports.Add),
            Evaluate = _ => new Dictionary<string, double> { ["ppl"] = 3.5 },
        };
        trainer.Train(data);

        Assert.Equal(new[] { 2, 4, 6, 8 }, reports.Select(r => r.Step));
        Assert.All(reports, r =>
        {
            Assert.Equal(8, r.TotalSteps);
            Assert.True(double.IsFinite(r.Loss) && r.Loss > 0);
            Assert.True(r.TokensPerSecond > 0);
            Assert.Equal(r.Loss, (0.5 * r.LossParts["ce"]) + (0.5 * r.LossParts["kd"]), 4); // parts normalised like the loss
        });
        Assert.Equal(TimeSpan.Zero, reports[^1].EstimatedRemaining);
        var lines = File.ReadAllLines(Path.Combine(tmp.Path, TrainingMetricsWriter.JsonlFile)).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal(4, lines.Count(l => l.GetProperty("kind").GetString() == "train"));
        Assert.Equal(new[] { 4, 8 }, lines.Where(l => l.GetProperty("kind").GetString() == "eval").Select(l => l.GetProperty("step").GetInt32()));
        Assert.All(lines.Where(l => l.GetProperty("kind").GetString() == "train"), l => Assert.True(l.GetProperty("lr").GetDouble() > 0));
        var events = Directory.GetFiles(Path.Combine(tmp.Path, TrainingMetricsWriter.TensorBoardFolder), "events.out.tfevents.*");
        Assert.Single(events);
        var bytes = File.ReadAllBytes(events[0]);
        Assert.Contains("train/loss", System.Text.Encoding.ASCII.GetString(bytes));
        Assert.Contains("eval/ppl", System.Text.Encoding.ASCII.GetString(bytes));
    }

    [Fact]
    public void Train_ObjectiveWithParameters_TrainsThemAtTheirOwnLearningRateAndCheckpointsThem()
    {
        using var scope = NewDisposeScope();
        using var tmp = new TempFolder();
        var data = new SyntheticBatchSource(examples: 4, batchSize: 2, vocab: Vocab, seed: 3);
        var objective = new ScaledCrossEntropyObjective();
        var trainer = new DistillationTrainer(new TinyCausalLM(Vocab, Hidden, seed: 1), objective, null, Options(tmp.Path, o =>
        {
            o.MaxSteps = 1;
            o.LearningRate = 0; // student frozen by lr: only the objective moves
            o.ObjectiveLearningRate = 0.05;
            o.Schedule = LearningRateScheduleKind.Constant;
            o.WeightDecay = 0;
            o.MaxGradNorm = null;
        }));
        var result = trainer.Train(data);
        // First AdamW step moves each parameter by lr · g/(|g| + ε) ≈ ±lr.
        Assert.Equal(0.05, Math.Abs(objective.Scale.item<float>() - 1.0), 4);
        var saved = NamedTensorFile.Read(Path.Combine(result.LastCheckpoint!, CheckpointStore.ObjectiveFile));
        Assert.Equal(objective.Scale.item<float>(), saved["scale"].item<float>());
        var state = JsonDocument.Parse(File.ReadAllText(Path.Combine(result.LastCheckpoint!, CheckpointStore.StateFile))).RootElement;
        var groups = state.GetProperty("groups").EnumerateArray().Select(g => (g.GetProperty("name").GetString()!, g.GetProperty("base_learning_rate").GetDouble())).ToList();
        Assert.Equal(new[] { ("student_decay", 0.0), ("student_no_decay", 0.0), ("objective", 0.05) }, groups);
    }

    [Fact]
    public void Train_FrozenParameters_AreNotUpdated()
    {
        using var scope = NewDisposeScope();
        using var tmp = new TempFolder();
        var data = new SyntheticBatchSource(examples: 4, batchSize: 2, vocab: Vocab, seed: 3);
        var student = new TinyCausalLM(Vocab, Hidden, seed: 1);
        foreach (var (name, p) in student.named_parameters())
        {
            p.requires_grad = name.StartsWith("lm_head", StringComparison.Ordinal); // as LoRA would: most of the model frozen
        }

        var before = student.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.clone());
        new DistillationTrainer(student, new SumCrossEntropyObjective(), null, Options(tmp.Path, o => o.MaxSteps = 2)).Train(data);
        foreach (var (name, t) in student.state_dict())
        {
            Assert.Equal(!name.StartsWith("lm_head", StringComparison.Ordinal), Same(t, before[name]));
        }
    }

    [Fact]
    public void Train_LocalTeacher_StaysFrozenAndUnchanged()
    {
        using var scope = NewDisposeScope();
        using var tmp = new TempFolder();
        var teacher = new TinyCausalLM(Vocab, Hidden, seed: 2, dropoutP: 0.3);
        var before = teacher.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.clone());
        var student = new TinyCausalLM(Vocab, Hidden, seed: 1);
        new DistillationTrainer(student, new SumForwardKlObjective(), new LocalModelTeacher(teacher), Options(tmp.Path, o => o.MaxSteps = 3)).Train(new SyntheticBatchSource(examples: 8, batchSize: 2, vocab: Vocab, seed: 3));
        Assert.False(teacher.training);
        foreach (var (name, p) in teacher.named_parameters())
        {
            Assert.False(p.requires_grad, name);
            Assert.Null(p.grad);
            Assert.True(Same(p, before[name]), $"teacher {name} changed");
        }
    }

    [Fact]
    public void Train_BFloat16_KeepsFloat32MastersAndLearns()
    {
        using var scope = NewDisposeScope();
        using var tmp = new TempFolder();
        var data = new SyntheticBatchSource(examples: 16, batchSize: 4, vocab: Vocab, seed: 3);
        var student = new TinyCausalLM(Vocab, Hidden, seed: 1);
        var losses = new List<double>();
        var trainer = new DistillationTrainer(student, new SumCrossEntropyObjective(), null, Options(tmp.Path, o =>
        {
            o.Precision = TrainingPrecision.BFloat16;
            o.Epochs = 8;
            o.LearningRate = 2e-2;
            o.Schedule = LearningRateScheduleKind.Constant;
        }))
        {
            Progress = new SyncProgress<TrainingProgress>(p => losses.Add(p.Loss)),
        };
        var result = trainer.Train(data);
        Assert.All(student.parameters(), p => Assert.Equal(ScalarType.BFloat16, p.dtype));
        Assert.True(losses[^1] < losses[0] * 0.8, $"loss {losses[0]} → {losses[^1]}");
        var masters = NamedTensorFile.Read(Path.Combine(result.LastCheckpoint!, CheckpointStore.MasterWeightsFile));
        Assert.Equal(ScalarType.Float32, masters["lm_head.weight"].dtype);
        // The model holds the masters rounded to bf16.
        Assert.True(Same(masters["lm_head.weight"].to(ScalarType.BFloat16), student.state_dict()["lm_head.weight"]));
    }

    [Fact]
    public async Task TrainAsync_Sft_LowersLossAndCompletes()
    {
        using var tmp = new TempFolder();
        var data = new SyntheticBatchSource(examples: 16, batchSize: 4, vocab: Vocab, seed: 3);
        var losses = new List<double>();
        var trainer = new DistillationTrainer(new TinyCausalLM(Vocab, Hidden, seed: 1), new SumCrossEntropyObjective(), null, Options(tmp.Path, o =>
        {
            o.Epochs = 8;
            o.LearningRate = 2e-2;
        }))
        {
            Progress = new SyncProgress<TrainingProgress>(p => losses.Add(p.Loss)),
        };
        var result = await trainer.TrainAsync(data);
        Assert.Equal(TrainingStatus.Completed, result.Status);
        Assert.Equal(32, result.Steps);
        Assert.True(losses[^1] < losses[0] * 0.8, $"loss {losses[0]} → {losses[^1]}");
        Assert.Equal(losses[^1], result.LastLoss);
    }
}
