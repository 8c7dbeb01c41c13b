using Distill.Losses;
using Distill.Models;
using Distill.Training;
using Microsoft.Extensions.DependencyInjection;
using static TorchSharp.torch;

namespace Distill.Remote.Tests;

/// <summary>
/// The remote teacher as the run's <see cref="ITeacher"/> in the real trainer: the fake vLLM server answers the batch
/// pipeline's asynchronous, one-batch-ahead requests while a tiny GPT-2 student (V = 50, the server's vocabulary) trains.
/// </summary>
public sealed class RemoteTrainingTests : IDisposable
{
    private const int Steps = 4;
    private readonly List<string> dirs = [];

    public void Dispose()
    {
        foreach (var d in dirs)
        {
            if (Directory.Exists(d))
            {
                Directory.Delete(d, recursive: true);
            }
        }
    }

    [Fact]
    public void Train_ThroughDi_5xxDuringTheRunAreRetried_SameLossesAsACleanServer()
    {
        using var clean = new FakeVllmServer();
        using var faulty = new FakeVllmServer { FailFirst = 3 };
        using var scope = NewDisposeScope();

        var a = TrainThroughDi(clean);
        var b = TrainThroughDi(faulty);

        Assert.Equal(Steps, a.Count);
        Assert.Equal(a.Select(s => s.Loss), b.Select(s => s.Loss)); // no batch lost or changed by the retries
        Assert.All(a, s => Assert.True(double.IsFinite(s.Loss) && s.Loss > 0));
        Assert.True(faulty.CompletionRequests >= clean.CompletionRequests + 3, $"{faulty.CompletionRequests} vs {clean.CompletionRequests} requests");
    }

    [Fact]
    public void Train_ServerStartsDroppingPositionsMidRun_StopsWithAClearErrorAndNoPartialStep()
    {
        using var server = new FakeVllmServer();
        using var scope = NewDisposeScope();
        using var teacher = RemoteTeacher.Create(Options(server));
        var student = Student();
        var steps = new List<TrainingProgress>();
        var trainer = new DistillationTrainer(student, DistillObjectives.Create("sparse_forward_kl"), teacher, TrainingOptions(server)) { Progress = new Collect(steps) };
        var broken = false;
        trainer.Progress = new Collect(steps, () =>
        {
            if (!broken)
            {
                server.DropLastPosition = true; // from now on every answer misses a position
                broken = true;
            }
        });

        var e = Assert.ThrowsAny<InvalidOperationException>(() => trainer.Train(new Source()));

        Assert.StartsWith("Step ", e.Message, StringComparison.Ordinal);
        Assert.Contains("preparing the batch", e.Message, StringComparison.Ordinal);
        Assert.Contains("missing position", e.Message, StringComparison.Ordinal);
        Assert.True(steps.Count is >= 1 and < Steps, $"{steps.Count} steps ran");
    }

    private List<TrainingProgress> TrainThroughDi(FakeVllmServer server)
    {
        var services = new ServiceCollection();
        services.AddLogging();
        var o = Options(server);
        services.AddDistill()
            .AddDistillRemoteTeacher(x =>
            {
                x.Endpoint = o.Endpoint;
                x.Model = o.Model;
                x.K = o.K;
                x.RequestBatchSize = o.RequestBatchSize;
                x.MaxConcurrency = o.MaxConcurrency;
                x.MaxRetries = o.MaxRetries;
                x.RetryDelay = o.RetryDelay;
                x.AttemptTimeout = o.AttemptTimeout;
                x.TotalTimeout = o.TotalTimeout;
            })
            .AddDistillLosses()
            .AddDistillTrainer(t =>
            {
                var d = TrainingOptions(server);
                t.OutputDirectory = d.OutputDirectory;
                t.MaxSteps = d.MaxSteps;
                t.SaveCheckpoints = false;
                t.TensorBoard = false;
                t.LogEverySteps = 1;
                t.PrefetchBatches = true;
                t.Precision = TrainingPrecision.Float32;
            });
        using var provider = services.BuildServiceProvider(new ServiceProviderOptions { ValidateOnBuild = true });
        var teacher = provider.GetRequiredService<ITeacher>();
        Assert.IsType<RemoteTeacher>(teacher);
        var steps = new List<TrainingProgress>();
        var trainer = provider.GetRequiredService<IDistillationTrainerFactory>()
            .Create(Student(), provider.GetRequiredService<IObjectiveFactory>().Create("sparse_forward_kl"), teacher);
        trainer.Progress = new Collect(steps);
        var result = trainer.Train(new Source());
        Assert.Equal(TrainingStatus.Completed, result.Status);
        return steps;
    }

    private static RemoteTeacherOptions Options(FakeVllmServer server) => new()
    {
        Endpoint = server.Endpoint,
        Model = server.Model,
        K = 4,
        RequestBatchSize = 1,
        MaxConcurrency = 2,
        MaxRetries = 4,
        RetryDelay = TimeSpan.FromMilliseconds(1),
        AttemptTimeout = TimeSpan.FromSeconds(20),
        TotalTimeout = TimeSpan.FromSeconds(60),
    };

    private TrainingOptions TrainingOptions(FakeVllmServer server)
    {
        var dir = Path.Combine(Path.GetTempPath(), "distill-remote-train-" + Guid.NewGuid().ToString("N"));
        dirs.Add(dir);
        return new TrainingOptions
        {
            OutputDirectory = dir,
            MaxSteps = Steps,
            LearningRate = 1e-3,
            SaveCheckpoints = false,
            TensorBoard = false,
            LogEverySteps = 1,
            PrefetchBatches = true,
            Precision = TrainingPrecision.Float32,
        };
    }

    private static CausalLM Student() => AutoCausalLM.FromConfig(
        new Gpt2Config
        {
            ModelType = "gpt2",
            VocabSize = FakeVllmServer.Vocab,
            HiddenSize = 16,
            NumHiddenLayers = 1,
            NumAttentionHeads = 2,
            MaxPositionEmbeddings = 32,
            ResidualDropout = 0,
            EmbeddingDropout = 0,
            AttentionDropout = 0,
        },
        seed: 3);

    /// <summary>Right-padded batches of two rows (lengths 6 and 4), prompts of 2 tokens, ids from (epoch, index).</summary>
    private sealed class Source : IBatchSource
    {
        public int BatchesPerEpoch => 8;

        public DistillationBatch GetBatch(int epoch, int index)
        {
            const int t = 6;
            var ids = new long[2 * t];
            var mask = new long[2 * t];
            var labels = new long[2 * t];
            for (var row = 0; row < 2; row++)
            {
                var length = row == 0 ? 6 : 4;
                var tokens = Enumerable.Range(0, length + 1).Select(i => (long)(((epoch * 13) + (index * 7) + (row * 5) + (i * 3) + 1) % FakeVllmServer.Vocab)).ToArray();
                for (var i = 0; i < t; i++)
                {
                    var at = (row * t) + i;
                    ids[at] = i < length ? tokens[i] : 0;
                    mask[at] = i < length ? 1 : 0;
                    labels[at] = i >= 1 && i < length ? tokens[i + 1] : DistillationBatch.IgnoreIndex;
                }
            }

            return new DistillationBatch
            {
                InputIds = tensor(ids, [2, t]),
                AttentionMask = tensor(mask, [2, t]),
                Labels = tensor(labels, [2, t]),
            };
        }
    }

    private sealed class Collect(List<TrainingProgress> into, Action? after = null) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value)
        {
            into.Add(value);
            after?.Invoke();
        }
    }
}
