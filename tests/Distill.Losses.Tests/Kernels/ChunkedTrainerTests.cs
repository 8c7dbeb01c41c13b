using Distill.Tests.Shared;
using Distill.Training;
using static TorchSharp.torch;

namespace Distill.Losses.Tests;

/// <summary>
/// <c>atkd_chunked</c> and <c>sparse_forward_kl_chunked</c> inside the trainer: the trainer asks the student for hidden
/// states (not logits) because the objectives say so, validates the teacher against them, and the lm_head and the
/// embedding train through the fused kernel (finite loss, weights move).
/// </summary>
[Collection("Sequential")]
public sealed class ChunkedTrainerTests
{
    private const int V = 7;

    [Theory]
    [InlineData("atkd_chunked")]
    [InlineData("sparse_forward_kl_chunked")]
    public void Train_ChunkedBatchLevelObjectives_TrainTheStudent(string name)
    {
        using var folder = TestRuntime.CreateTempFolder();
        using var scope = NewDisposeScope();
        var student = new TinyCausalLM(seed: 1, vocab: V, hidden: 4);
        var lmHead = student.LmHeadWeight.detach().clone();
        var embedding = student.EmbeddingWeight.detach().clone();
        var sparse = name.StartsWith("sparse", StringComparison.Ordinal);
        var objective = TestData.Create(name, o =>
        {
            o.ChunkSize = 2;
            o.ChunkedTeacherFromHiddenStates = false;
            o.Sparse.TailHandling = SparseTailHandling.TailBucket;
        });
        var trainer = new DistillationTrainer(student, objective, new Teacher(sparse), new TrainingOptions
        {
            OutputDirectory = folder.Path,
            MaxSteps = 3,
            LearningRate = 1e-2,
            SaveCheckpoints = false,
            TensorBoard = false,
        });
        var result = trainer.Train(new Source());
        Assert.Equal(3, result.Steps);
        Assert.True(double.IsFinite(result.LastLoss) && result.LastLoss > 0, $"last loss {result.LastLoss}");
        Assert.True((student.LmHeadWeight - lmHead).abs().max().item<float>() > 1e-5f, "the lm_head did not train");
        Assert.True((student.EmbeddingWeight - embedding).abs().max().item<float>() > 1e-5f, "the hidden-state gradient did not reach the embedding");
    }

    /// <summary>A fixed teacher: dense logits, or their top-3 with the log tail mass (a cached teacher).</summary>
    private sealed class Teacher(bool sparse) : ITeacher
    {
        public TeacherInfo Info => new() { Capabilities = sparse ? TeacherCapabilities.SparseTopK : TeacherCapabilities.DenseLogits, VocabularySize = V };

        public TeacherOutput Infer(DistillationBatch batch, ObjectiveRequirements requirements)
        {
            var logits = TestData.Logits(5, batch.InputIds.shape[0], batch.InputIds.shape[1], V);
            return sparse ? SparseChunkedObjectiveTests.TopK(logits, 3) : new TeacherOutput { Logits = logits };
        }
    }

    private sealed class Source : IBatchSource
    {
        public int BatchesPerEpoch => 4;

        public DistillationBatch GetBatch(int epoch, int index) => new()
        {
            InputIds = tensor(new long[] { 1, 2, 3, 4, 5, 6 }, [2, 3]),
            AttentionMask = ones(2, 3, dtype: ScalarType.Int64),
            Labels = tensor(new long[] { -100, 3, 4, 5, 6, 1 }, [2, 3]),
        };
    }
}
