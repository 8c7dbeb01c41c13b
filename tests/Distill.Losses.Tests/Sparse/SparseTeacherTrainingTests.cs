using Distill.Data;
using Distill.Models;
using Distill.Tests.Shared;
using Distill.Training;
using Microsoft.Extensions.DependencyInjection;
using static TorchSharp.torch;

namespace Distill.Losses.Tests.Sparse;

/// <summary>
/// A cached top-k teacher as the run's <see cref="ITeacher"/> inside the real trainer: a cache built from a tiny local GPT-2
/// teacher over the bundled data, read back by <see cref="CachedTopKTeacher"/> through the trainer's batch pipeline (with
/// prefetch), against online training with the same teacher model.
/// </summary>
[Collection("Sequential")]
public sealed class SparseTeacherTrainingTests
{
    private const int Steps = 3;

    [Fact]
    public async Task CacheWithKEqualV_TrainsTheSameWeightsAsOnlineDenseForwardKl()
    {
        using var folder = TestRuntime.CreateTempFolder();
        using var scope = NewDisposeScope();
        var tokenizer = BundledData.TokenizerA();
        var dataset = Dataset(tokenizer);
        var teacherModel = Tiny(tokenizer, hidden: 48, layers: 2, seed: 2);
        using var teacher = await BuildCache(folder.Path, dataset, teacherModel, k: tokenizer.VocabSize);

        // T = 1 on both sides (the dense family's default is 2); α = 0.5 on both.
        var online = Tiny(tokenizer, hidden: 32, layers: 1, seed: 1);
        var cached = Tiny(tokenizer, hidden: 32, layers: 1, seed: 1);
        var dense = DistillObjectives.Create(ObjectiveNames.ForwardKl, new LossesOptions { Divergence = { Temperature = 1.0 } });
        var sparse = DistillObjectives.Create("sparse_forward_kl");
        var a = Train(online, dense, new LocalModelTeacher(teacherModel), Batches(dataset), Path.Combine(folder.Path, "online"));
        var b = Train(cached, sparse, teacher, Batches(dataset), Path.Combine(folder.Path, "cached"));

        Assert.Equal(TrainingStatus.Completed, a.Result.Status);
        Assert.Equal(TrainingStatus.Completed, b.Result.Status);
        var before = Tiny(tokenizer, hidden: 32, layers: 1, seed: 1).Module.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        var other = cached.Module.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        var moved = 0.0;
        foreach (var (name, p) in online.Module.named_parameters())
        {
            var diff = (p - other[name]).abs().max().item<float>();
            Assert.True(diff < 2e-5, $"{name}: online and cached weights differ by {diff}");
            moved = Math.Max(moved, (p - before[name]).abs().max().item<float>());
        }

        Assert.True(moved > 1e-4, $"training must move the weights (max change {moved})");
        // The KD term differs by the teacher's entropy only when the dense loss is the cross-entropy form; CE is identical.
        Assert.Equal(a.Steps[0].LossParts["ce"], b.Steps[0].LossParts["ce"], 5);
    }

    [Fact]
    public async Task CacheWithKBelowV_TrainsAndStepOneLossEqualsHandComputation()
    {
        const int k = 16;
        using var folder = TestRuntime.CreateTempFolder();
        using var scope = NewDisposeScope();
        var tokenizer = BundledData.TokenizerA();
        var dataset = Dataset(tokenizer);
        var teacherModel = Tiny(tokenizer, hidden: 48, layers: 2, seed: 2);
        using var teacher = await BuildCache(folder.Path, dataset, teacherModel, k);
        var student = Tiny(tokenizer, hidden: 32, layers: 1, seed: 1);

        // Hand value of step 1 (before any update), from the dense teacher logits, not from the cache: per scored token,
        // CE = −log q_y and KD = Σ_{i ≤ k} p̂_i·(log p̂_i − log q_{id_i}) with p̂ the teacher's top-16 renormalised
        // (Renormalize: the student's tail bucket meets a teacher probability of 0 and adds nothing); the loss is
        // Σ (0.5·CE + 0.5·KD) / #scored over the step's one micro-batch.
        double expected;
        using (var batch = Batches(dataset).GetBatch(0, 0))
        using (no_grad())
        {
            student.Module.eval();
            var input = new CausalLMInput { InputIds = batch.InputIds, AttentionMask = batch.AttentionMask, PositionIds = batch.PositionIds };
            var logQ = student.Forward(input).Logits!.to(ScalarType.Float64).log_softmax(-1);
            teacherModel.Module.eval();
            var logP = teacherModel.Forward(input).Logits!.to(ScalarType.Float64).log_softmax(-1);
            var (top, ids) = logP.topk(k, dim: -1);
            var pHat = top.softmax(-1);
            var kd = (pHat * (pHat.log() - logQ.gather(-1, ids))).sum(-1);
            var mask = batch.Labels.ne(DistillationBatch.IgnoreIndex);
            var safe = batch.Labels.masked_fill(mask.logical_not(), 0);
            var ce = -logQ.gather(-1, safe.unsqueeze(-1)).squeeze(-1);
            var perToken = (0.5 * ce) + (0.5 * kd);
            expected = (perToken * mask).sum().item<double>() / mask.sum().item<long>();
            student.Module.train();
        }

        var run = Train(student, DistillObjectives.Create("sparse_forward_kl"), teacher, Batches(dataset), Path.Combine(folder.Path, "run"));

        Assert.Equal(TrainingStatus.Completed, run.Result.Status);
        Assert.Equal(Steps, run.Steps.Count);
        Assert.Equal(expected, run.Steps[0].Loss, 4);
        Assert.All(run.Steps, s => Assert.True(double.IsFinite(s.Loss) && s.Loss > 0, $"step {s.Step}: {s.Loss}"));
    }

    [Fact]
    public async Task ThroughDi_CacheTeacherObjectiveAndTrainerFactory_TrainWithPrefetch()
    {
        using var folder = TestRuntime.CreateTempFolder();
        using var scope = NewDisposeScope();
        var tokenizer = BundledData.TokenizerA();
        var dataset = Dataset(tokenizer);
        (await BuildCache(folder.Path, dataset, Tiny(tokenizer, hidden: 48, layers: 1, seed: 2), k: 8)).Dispose();
        var services = new ServiceCollection();
        services.AddDistill()
            .AddDistillTeacherCache(o =>
            {
                o.Directory = Path.Combine(folder.Path, "cache");
                o.DatasetHash = TeacherCacheHashes.Dataset(TeacherCacheExample.FromDataset(dataset));
                o.TokenizerHash = TeacherCacheHashes.Tokenizer(tokenizer);
                o.K = 8;
                o.VerifyChecksums = true;
            })
            .AddDistillLosses()
            .AddDistillTrainer(o =>
            {
                o.OutputDirectory = Path.Combine(folder.Path, "run");
                o.MaxSteps = Steps;
                o.SaveCheckpoints = false;
                o.TensorBoard = false;
                o.PrefetchBatches = true;
            });
        using var provider = services.BuildServiceProvider(new ServiceProviderOptions { ValidateOnBuild = true });

        var teacher = provider.GetRequiredService<ITeacher>();
        Assert.IsType<CachedTopKTeacher>(teacher);
        var objective = provider.GetRequiredService<IObjectiveFactory>().Create("sparse_reverse_kl");
        var trainer = provider.GetRequiredService<IDistillationTrainerFactory>().Create(Tiny(tokenizer, hidden: 32, layers: 1, seed: 1), objective, teacher);
        var result = trainer.Train(Batches(dataset));

        Assert.Equal(TrainingStatus.Completed, result.Status);
        Assert.True(double.IsFinite(result.LastLoss) && result.LastLoss > 0);
    }

    [Fact]
    public void ThroughDi_CacheOptionsWithoutDirectory_FailValidation()
    {
        var services = new ServiceCollection();
        services.AddDistill().AddDistillTeacherCache(o => o.K = 0);
        using var provider = services.BuildServiceProvider();
        var e = Assert.Throws<Microsoft.Extensions.Options.OptionsValidationException>(() => provider.GetRequiredService<Microsoft.Extensions.Options.IOptions<TeacherCacheOptions>>().Value);
        Assert.Contains("Directory", e.Message, StringComparison.Ordinal);
        Assert.Contains("K", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task DenseOnlyObjectiveWithCachedTeacher_IsRefusedAtConstructionNamingSparse()
    {
        using var folder = TestRuntime.CreateTempFolder();
        using var scope = NewDisposeScope();
        var tokenizer = BundledData.TokenizerA();
        var dataset = Dataset(tokenizer);
        using var teacher = await BuildCache(folder.Path, dataset, Tiny(tokenizer, hidden: 48, layers: 1, seed: 2), k: 8);

        var e = Assert.Throws<ArgumentException>(() => new DistillationTrainer(
            Tiny(tokenizer, hidden: 32, layers: 1, seed: 1),
            DistillObjectives.Create(ObjectiveNames.ForwardKl),
            teacher,
            Options(folder.Path)));

        Assert.Contains("'forward_kl'", e.Message, StringComparison.Ordinal);
        Assert.Contains("sparse top-k", e.Message, StringComparison.Ordinal);
        Assert.Contains("does not accept", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task StudentTokenCache_WithCrossTokenizerObjective_NamesTheTokensField()
    {
        using var folder = TestRuntime.CreateTempFolder();
        using var scope = NewDisposeScope();
        var tokenizer = BundledData.TokenizerA();
        var dataset = Dataset(tokenizer);
        using var teacher = await BuildCache(folder.Path, dataset, Tiny(tokenizer, hidden: 48, layers: 1, seed: 2), k: 8);
        var crossDataset = TokenizedDataset.Create(Examples(), tokenizer, BundledData.TokenizerB(), maxLength: 96, maxPromptLength: 48);
        using var batch = crossDataset.Collate([0, 1]);

        var e = Assert.Throws<InvalidOperationException>(() => teacher.Infer(batch, new Losses.CrossTokenizer.UldObjective().Requirements));

        Assert.Contains("tokens = student", e.Message, StringComparison.Ordinal);
        Assert.Contains("TeacherCacheTokens.Teacher", e.Message, StringComparison.Ordinal);
    }

    internal static async Task<CachedTopKTeacher> BuildCache(string folder, TokenizedDataset dataset, ICausalLM teacherModel, int k, TeacherCacheTokens tokens = TeacherCacheTokens.Student)
    {
        var cache = Path.Combine(folder, "cache");
        var tokenizer = tokens == TeacherCacheTokens.Teacher ? dataset.TeacherTokenizer! : dataset.StudentTokenizer;
        await TeacherCacheWriter.BuildAsync(
            cache,
            new TeacherCacheIdentity { Teacher = "tiny", TokenizerHash = TeacherCacheHashes.Tokenizer(tokenizer), Template = "bundled", K = k, Tokens = tokens },
            dataset,
            new LocalModelTopKProducer(teacherModel),
            new TeacherCacheWriterOptions { RowsPerChunk = 4, BatchSize = 4 });
        return new CachedTopKTeacher(TeacherCacheReader.Open(cache, new TeacherCacheExpectation
        {
            DatasetHash = TeacherCacheHashes.Dataset(TeacherCacheExample.FromDataset(dataset, tokens)),
            TokenizerHash = TeacherCacheHashes.Tokenizer(tokenizer),
            K = k,
            Tokens = tokens,
        }));
    }

    internal static IEnumerable<TextExample> Examples() => BundledData.Load(BundledSplit.Train).Take(8)
        .Select(e => new TextExample($"Instruction: {e.Instruction}\nResponse:", " " + e.Output));

    private static TokenizedDataset Dataset(HfTokenizer tokenizer) => TokenizedDataset.Create(Examples(), tokenizer, null, maxLength: 96, maxPromptLength: 48);

    internal static DistillationBatchSource Batches(TokenizedDataset dataset) => new(dataset, new BatchSampler(dataset.Count, 2, 7));

    internal static TrainingOptions Options(string output) => new()
    {
        OutputDirectory = output,
        MaxSteps = Steps,
        LearningRate = 1e-3,
        SaveCheckpoints = false,
        Precision = TrainingPrecision.Float32,
        LogEverySteps = 1,
        TensorBoard = false,
    };

    internal static (TrainingResult Result, List<TrainingProgress> Steps) Train(ICausalLM student, IDistillationObjective objective, ITeacher teacher, IBatchSource batches, string output)
    {
        var steps = new List<TrainingProgress>();
        var trainer = new DistillationTrainer(student, objective, teacher, Options(output)) { Progress = new Collect(steps) };
        return (trainer.Train(batches), steps);
    }

    internal static CausalLM Tiny(HfTokenizer tokenizer, int hidden, int layers, long seed) => AutoCausalLM.FromConfig(
        new Gpt2Config
        {
            ModelType = "gpt2",
            VocabSize = tokenizer.VocabSize,
            HiddenSize = hidden,
            NumHiddenLayers = layers,
            NumAttentionHeads = 2,
            MaxPositionEmbeddings = 128,
            ResidualDropout = 0,
            EmbeddingDropout = 0,
            AttentionDropout = 0,
            EosTokenIds = [TokenizedDataset.PadId(tokenizer)],
        },
        seed);

    private sealed class Collect(List<TrainingProgress> into) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => into.Add(value);
    }
}
