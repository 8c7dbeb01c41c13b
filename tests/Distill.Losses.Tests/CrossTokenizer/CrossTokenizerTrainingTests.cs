using Distill.Data;
using Distill.Losses.CrossTokenizer;
using Distill.Losses.DualSpace;
using Distill.Models;
using Distill.Tests.Shared;
using Distill.Training;
using static TorchSharp.torch;

namespace Distill.Losses.Tests.CrossTokenizer;

/// <summary>
/// The objectives inside the real trainer with real (tiny) GPT-2 models and two genuinely different tokenizers in one
/// batch (student: the bundled byte-level tokenizer; teacher: the bundled trained BPE), built by Distill.Data's batch source.
/// </summary>
[Collection("Sequential")]
public sealed class CrossTokenizerTrainingTests
{
    [Theory]
    [InlineData("dskd_cma")]
    [InlineData("uld")]
    [InlineData("uld_dskd")]
    [InlineData("min_ed")]
    public void Train_TwoTokenizers_RunsAndKeepsLossFinite(string name)
    {
        using var folder = TestRuntime.CreateTempFolder();
        using var scope = NewDisposeScope();
        var student = BundledData.TokenizerA();
        var teacher = BundledData.TokenizerB();
        var studentModel = Tiny(student, hidden: 32, seed: 1);
        var teacherModel = Tiny(teacher, hidden: 48, seed: 2);
        IDistillationObjective objective = name switch
        {
            "dskd_cma" => new DskdCmaObjective(),
            "uld" => new UldObjective(),
            "uld_dskd" => new UldDskdObjective(),
            _ => new MinEdObjective(null, Data.Alignment.VocabularyMap.Build(student, teacher), student, teacher),
        };
        Tensor? queryBefore = null;
        if (objective is IModelAwareObjective aware)
        {
            aware.Initialize(studentModel, teacherModel);
            queryBefore = ((DskdCmaObjective)objective).Projectors.Query!.weight!.detach().clone();
        }

        var result = Train(studentModel, teacherModel, objective, Batches(student, teacher), folder.Path);

        Assert.Equal(TrainingStatus.Completed, result.Status);
        Assert.Equal(3, result.Steps);
        Assert.True(double.IsFinite(result.LastLoss) && result.LastLoss > 0, $"{name}: last loss {result.LastLoss}");
        if (queryBefore is not null)
        {
            var after = ((DskdCmaObjective)objective).Projectors.Query!.weight!;
            Assert.True((after - queryBefore).abs().max().item<float>() > 0, "the trainer must update the CMA query projector");
        }
    }

    [Fact]
    public void Train_DskdSameTokenizer_UpdatesBothProjectors()
    {
        using var folder = TestRuntime.CreateTempFolder();
        using var scope = NewDisposeScope();
        var tokenizer = BundledData.TokenizerB();
        var studentModel = Tiny(tokenizer, hidden: 32, seed: 1);
        var teacherModel = Tiny(tokenizer, hidden: 48, seed: 2);
        var objective = new DskdObjective();
        objective.Initialize(studentModel, teacherModel);
        var t2s = objective.Projectors.TeacherToStudent.weight!.detach().clone();
        var s2t = objective.Projectors.StudentToTeacher.weight!.detach().clone();

        var result = Train(studentModel, teacherModel, objective, Batches(tokenizer, null), folder.Path);

        Assert.Equal(TrainingStatus.Completed, result.Status);
        Assert.True(double.IsFinite(result.LastLoss));
        Assert.True((objective.Projectors.TeacherToStudent.weight! - t2s).abs().max().item<float>() > 0);
        Assert.True((objective.Projectors.StudentToTeacher.weight! - s2t).abs().max().item<float>() > 0);
    }

    [Fact]
    public void Train_257Vs264VocabularyWithSliceToSharedVocabulary_Trains_AndWithoutItIsRefused()
    {
        // One tokenizer (the bundled bytes tokenizer, 257 ids); the teacher's embedding is padded to 264 rows, as real
        // checkpoints pad to a multiple of 8. The trainer no longer checks vocabularies itself: the objective decides.
        using var folder = TestRuntime.CreateTempFolder();
        using var scope = NewDisposeScope();
        var tokenizer = BundledData.TokenizerA();
        Assert.Equal(257, tokenizer.VocabSize);
        var studentModel = Tiny(tokenizer, hidden: 32, seed: 1);
        var teacherModel = Tiny(tokenizer, hidden: 48, seed: 2, vocabSize: 264);

        var result = Train(studentModel, teacherModel, TestData.Create("forward_kl", o => o.SliceToSharedVocabulary = true), Batches(tokenizer, null), folder.Path);
        Assert.Equal(TrainingStatus.Completed, result.Status);
        Assert.True(double.IsFinite(result.LastLoss) && result.LastLoss > 0);

        // Without the option the objective refuses the pair, naming the option: in its Validate (at construction), or at
        // the latest at the first step (its logits guard), wrapped with the step.
        var refused = Record.Exception(() => Train(studentModel, teacherModel, TestData.Create("forward_kl"), Batches(tokenizer, null), folder.Path));
        Assert.True(refused is ArgumentException or InvalidOperationException, refused?.GetType().Name);
        Assert.Contains(nameof(LossesOptions.SliceToSharedVocabulary), refused!.Message, StringComparison.Ordinal);
    }

    private static TrainingResult Train(CausalLM student, CausalLM teacher, IDistillationObjective objective, IBatchSource batches, string output)
    {
        var trainer = new DistillationTrainer(student, objective, new LocalModelTeacher(teacher), new TrainingOptions
        {
            OutputDirectory = output,
            MaxSteps = 3,
            LearningRate = 1e-3,
            SaveCheckpoints = false,
            Precision = TrainingPrecision.Float32,
            LogEverySteps = 1,
        });
        return trainer.Train(batches);
    }

    private static CausalLM Tiny(HfTokenizer tokenizer, int hidden, long seed, int? vocabSize = null) => AutoCausalLM.FromConfig(
        new Gpt2Config
        {
            ModelType = "gpt2",
            VocabSize = vocabSize ?? tokenizer.VocabSize,
            HiddenSize = hidden,
            NumHiddenLayers = 1,
            NumAttentionHeads = 2,
            MaxPositionEmbeddings = 128,
            EosTokenIds = [TokenizedDataset.PadId(tokenizer)],
        },
        seed);

    private static DistillationBatchSource Batches(HfTokenizer student, HfTokenizer? teacher)
    {
        var examples = BundledData.Load(BundledSplit.Train).Take(8)
            .Select(e => new TextExample($"Instruction: {e.Instruction}\nResponse:", " " + e.Output));
        var dataset = TokenizedDataset.Create(examples, student, teacher, maxLength: 96, maxPromptLength: 48);
        return new DistillationBatchSource(dataset, new BatchSampler(dataset.Count, 2, 7));
    }
}
