using Distill.Tests.Shared;
using Distill.Training;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using TorchSharp;
using static TorchSharp.torch;

namespace Distill.Core.Tests.Training;

[Collection("Sequential")]
public class TrainerSetupTests
{
    private static TrainingOptions Options(string dir) => new() { OutputDirectory = dir, TensorBoard = false, LogEverySteps = 1 };

    [Fact]
    public void Constructor_DifferentVocabularies_NamesBothSizes()
    {
        using var scope = NewDisposeScope();
        using var tmp = new TempFolder();
        var student = new TinyCausalLM(13, 8, seed: 1);
        var teacher = new LocalModelTeacher(new TinyCausalLM(17, 8, seed: 2));
        var e = Assert.Throws<ArgumentException>(() => new DistillationTrainer(student, new SumForwardKlObjective(), teacher, Options(tmp.Path)));
        Assert.Contains("13", e.Message);
        Assert.Contains("17", e.Message);
        Assert.Contains("test_forward_kl", e.Message);
        Assert.IsType<InvalidOperationException>(e.InnerException); // the objective's Validate decided, not the trainer
    }

    [Fact]
    public void Constructor_ObjectiveNeedsTeacherButNone_Throws()
    {
        using var scope = NewDisposeScope();
        using var tmp = new TempFolder();
        var e = Assert.Throws<ArgumentException>(() => new DistillationTrainer(new TinyCausalLM(13, 8, seed: 1), new SumForwardKlObjective(), null, Options(tmp.Path)));
        Assert.Contains("needs a teacher", e.Message);
    }

    [Fact]
    public void Constructor_TeacherIsStudent_Throws()
    {
        using var scope = NewDisposeScope();
        using var tmp = new TempFolder();
        var model = new TinyCausalLM(13, 8, seed: 1);
        // Wrapping freezes the model, so build the teacher first, then check that the trainer refuses the pair.
        var teacher = new LocalModelTeacher(model);
        Assert.Throws<ArgumentException>(() => new DistillationTrainer(model, new SumForwardKlObjective(), teacher, Options(tmp.Path)));
    }

    [Fact]
    public void Constructor_InvalidOptions_ListsEveryBadField()
    {
        using var tmp = new TempFolder();
        var o = Options(tmp.Path);
        o.GradientAccumulationSteps = 0;
        o.Beta2 = 1.0;
        o.WarmupRatio = -0.1;
        var e = Assert.Throws<ArgumentException>(() => new DistillationTrainer(new TinyCausalLM(13, 8, seed: 1), new SumCrossEntropyObjective(), null, o));
        Assert.Contains("GradientAccumulationSteps", e.Message);
        Assert.Contains("Beta2", e.Message);
        Assert.Contains("WarmupRatio", e.Message);
    }

    [Fact]
    public void Train_TooFewBatchesForOneWindow_Throws()
    {
        using var scope = NewDisposeScope();
        using var tmp = new TempFolder();
        var o = Options(tmp.Path);
        o.GradientAccumulationSteps = 4;
        var trainer = new DistillationTrainer(new TinyCausalLM(13, 8, seed: 1), new SumCrossEntropyObjective(), null, o);
        var e = Assert.Throws<ArgumentException>(() => trainer.Train(new SyntheticBatchSource(examples: 6, batchSize: 2, vocab: 13, seed: 1)));
        Assert.Contains("3 batches per epoch", e.Message);
    }

    [Fact]
    public void Train_CrossTokenizerObjectiveWithoutTeacherTokens_NamesTheBatch()
    {
        using var scope = NewDisposeScope();
        using var tmp = new TempFolder();
        var trainer = new DistillationTrainer(new TinyCausalLM(13, 8, seed: 1), new NeedsTeacherTokens(), new LocalModelTeacher(new TinyCausalLM(13, 8, seed: 2)), Options(tmp.Path));
        var e = Assert.Throws<InvalidOperationException>(() => trainer.Train(new SyntheticBatchSource(examples: 4, batchSize: 2, vocab: 13, seed: 1)));
        Assert.Contains("batch 0 of epoch 0", e.Message);
        Assert.Contains("TeacherInputIds", e.Message);
    }

    [Fact]
    public void Train_ResumeWithDifferentAccumulation_RefusesNamingTheField()
    {
        using var scope = NewDisposeScope();
        using var tmp = new TempFolder();
        var data = new SyntheticBatchSource(examples: 8, batchSize: 2, vocab: 13, seed: 1);
        var o = Options(tmp.Path);
        o.MaxSteps = 2;
        new DistillationTrainer(new TinyCausalLM(13, 8, seed: 1), new SumCrossEntropyObjective(), null, o).Train(data);
        o.GradientAccumulationSteps = 2;
        var e = Assert.Throws<ArgumentException>(() => new DistillationTrainer(new TinyCausalLM(13, 8, seed: 1), new SumCrossEntropyObjective(), null, o).Train(data, "latest"));
        Assert.Contains("steps_per_epoch", e.Message);
        Assert.Contains(CheckpointStore.StateFile, e.Message);
    }

    [Fact]
    public void Train_ResumeFromMissingCheckpoint_Throws()
    {
        using var scope = NewDisposeScope();
        using var tmp = new TempFolder();
        var trainer = new DistillationTrainer(new TinyCausalLM(13, 8, seed: 1), new SumCrossEntropyObjective(), null, Options(tmp.Path));
        var e = Assert.Throws<DirectoryNotFoundException>(() => trainer.Train(new SyntheticBatchSource(examples: 4, batchSize: 2, vocab: 13, seed: 1), "latest"));
        Assert.Contains("No checkpoint", e.Message);
    }

    [Fact]
    public void Train_CancelledBeforeFirstStep_ReturnsCancelledWithoutCheckpoint()
    {
        using var scope = NewDisposeScope();
        using var tmp = new TempFolder();
        var trainer = new DistillationTrainer(new TinyCausalLM(13, 8, seed: 1), new SumCrossEntropyObjective(), null, Options(tmp.Path));
        var result = trainer.Train(new SyntheticBatchSource(examples: 4, batchSize: 2, vocab: 13, seed: 1), cancellationToken: new CancellationToken(canceled: true));
        Assert.Equal(TrainingStatus.Cancelled, result.Status);
        Assert.Equal(0, result.Steps);
        Assert.Null(result.LastCheckpoint);
    }

    [Fact]
    public void Save_LeftoverTemporaryFolder_IsIgnoredAndCleaned()
    {
        using var scope = NewDisposeScope();
        using var tmp = new TempFolder();
        var trainer = new DistillationTrainer(new TinyCausalLM(13, 8, seed: 1), new SumCrossEntropyObjective(), null, Options(tmp.Path));
        // A crash mid-write leaves a temp folder (and maybe a step folder without trainer_state.json): neither is a checkpoint.
        Directory.CreateDirectory(Path.Combine(trainer.CheckpointDirectory, ".tmp-step-00000009-dead"));
        Directory.CreateDirectory(Path.Combine(trainer.CheckpointDirectory, "step-00000009"));
        var store = new CheckpointStore(trainer.CheckpointDirectory, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance);
        Assert.Empty(store.List());
        Assert.Throws<DirectoryNotFoundException>(() => store.Resolve("latest"));
        trainer.Train(new SyntheticBatchSource(examples: 4, batchSize: 2, vocab: 13, seed: 1));
        Assert.False(Directory.Exists(Path.Combine(trainer.CheckpointDirectory, ".tmp-step-00000009-dead")));
        Assert.Equal(2, store.List().Single().Step);
    }

    [Fact]
    public void LocalModelTeacher_Infer_FrozenEvalNoGradAndUsesTeacherTokens()
    {
        using var scope = NewDisposeScope();
        var model = new TinyCausalLM(13, 8, seed: 2, dropoutP: 0.5);
        var teacher = new LocalModelTeacher(model);
        Assert.All(model.parameters(), p => Assert.False(p.requires_grad));
        model.train(); // someone flips it back: Infer must still run without dropout
        using var batch = new DistillationBatch
        {
            InputIds = torch.tensor(new long[] { 1, 2, 3, 4 }, [1, 4]),
            AttentionMask = torch.ones(1, 4, dtype: ScalarType.Int64),
            Labels = torch.tensor(new long[] { 2, 3, 4, -100 }, [1, 4]),
            TeacherInputIds = torch.tensor(new long[] { 5, 6 }, [1, 2]),
            TeacherAttentionMask = torch.ones(1, 2, dtype: ScalarType.Int64),
            TeacherLabels = torch.tensor(new long[] { 6, -100 }, [1, 2]),
        };
        var a = teacher.Infer(batch, new ObjectiveRequirements { NeedsTeacherHiddenStates = true });
        var b = teacher.Infer(batch, new ObjectiveRequirements { NeedsTeacherHiddenStates = true });
        Assert.Equal(new long[] { 1, 2, 13 }, a.Logits!.shape); // the teacher's own 2 tokens
        Assert.Equal(new long[] { 1, 2, 8 }, a.HiddenStates!.shape);
        Assert.False(a.Logits.requires_grad);
        Assert.True(a.Logits.eq(b.Logits!).all().item<bool>()); // deterministic: dropout off
        var hiddenOnly = teacher.Infer(batch, new ObjectiveRequirements { NeedsTeacherLogits = false, NeedsTeacherHiddenStates = true });
        Assert.Null(hiddenOnly.Logits);
    }

    [Fact]
    public void AddDistillTrainer_ResolvesFactoryWithBoundOptions()
    {
        using var scope = NewDisposeScope();
        using var tmp = new TempFolder();
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddDistill().AddDistillTrainer(o =>
        {
            o.OutputDirectory = tmp.Path;
            o.GradientAccumulationSteps = 3;
        }).AddDistillTrainer();
        using var provider = services.BuildServiceProvider();
        var factory = provider.GetRequiredService<IDistillationTrainerFactory>();
        var trainer = factory.Create(new TinyCausalLM(13, 8, seed: 1), new SumCrossEntropyObjective(), null, o => o.Seed = 5);
        Assert.Equal(3, trainer.Options.GradientAccumulationSteps);
        Assert.Equal(5, trainer.Options.Seed);
        Assert.Equal(42, provider.GetRequiredService<IOptions<TrainingOptions>>().Value.Seed); // per-run change did not leak
    }

    [Fact]
    public void AddDistillTrainer_InvalidOptions_FailValidation()
    {
        var services = new ServiceCollection();
        services.AddDistill().AddDistillTrainer(o => o.Epochs = 0);
        using var provider = services.BuildServiceProvider();
        var e = Assert.Throws<OptionsValidationException>(() => provider.GetRequiredService<IOptions<TrainingOptions>>().Value);
        Assert.Contains("Epochs", e.Message);
    }

    [Fact]
    public void AddDistillTrainer_ConfigurationSection_BindsOptions()
    {
        var config = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Training:LearningRate"] = "0.0005",
            ["Training:Schedule"] = "Linear",
            ["Training:MaxGradNorm"] = "0.5",
            ["Training:BestMetric"] = "rougeL",
        }).Build();
        var services = new ServiceCollection();
        services.AddDistill().AddDistillTrainer(config.GetSection("Training"));
        using var provider = services.BuildServiceProvider();
        var o = provider.GetRequiredService<IOptions<TrainingOptions>>().Value;
        Assert.Equal(5e-4, o.LearningRate);
        Assert.Equal(LearningRateScheduleKind.Linear, o.Schedule);
        Assert.Equal(0.5, o.MaxGradNorm);
        Assert.Equal("rougeL", o.BestMetric);
        Assert.Equal(0.01, o.WeightDecay); // untouched default
    }

    [Fact]
    public void Train_WithLogger_WritesStartStepCheckpointAndFinishEvents()
    {
        using var scope = NewDisposeScope();
        using var tmp = new TempFolder();
        var logger = new CapturingLogger();
        var o = Options(tmp.Path);
        o.MaxSteps = 2;
        new DistillationTrainer(new TinyCausalLM(13, 8, seed: 1), new SumCrossEntropyObjective(), null, o, logger).Train(new SyntheticBatchSource(examples: 4, batchSize: 2, vocab: 13, seed: 1));
        var ids = logger.Events.Select(e => e.Id).ToList();
        Assert.Contains(1201, ids); // started
        Assert.Equal(2, ids.Count(i => i == 1202)); // one per step at LogEverySteps = 1
        Assert.Contains(1204, ids); // checkpoint written
        Assert.Equal(1208, ids[^1]); // finished
        Assert.Contains(logger.Events, e => e.Id == 1202 && e.Message.Contains("Step 2/2", StringComparison.Ordinal));
    }

    private sealed class CapturingLogger : Microsoft.Extensions.Logging.ILogger<DistillationTrainer>
    {
        public List<(int Id, string Message)> Events { get; } = [];

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(Microsoft.Extensions.Logging.LogLevel logLevel) => true;

        public void Log<TState>(Microsoft.Extensions.Logging.LogLevel logLevel, Microsoft.Extensions.Logging.EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            Events.Add((eventId.Id, formatter(state, exception)));
    }

    private sealed class NeedsTeacherTokens : IDistillationObjective
    {
        public string Name => "cross";

        public ObjectiveRequirements Requirements { get; } = new() { RequiresSameVocabulary = false, RequiresTeacherTokens = true };

        public nn.Module? Module => null;

        public ObjectiveResult Compute(ObjectiveContext context) => throw new InvalidOperationException("not reached");
    }
}
