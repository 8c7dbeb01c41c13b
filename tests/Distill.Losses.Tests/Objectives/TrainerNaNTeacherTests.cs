using Distill.Tests.Shared;
using Distill.Training;
using static TorchSharp.torch;

namespace Distill.Losses.Tests;

/// <summary>A real objective inside the trainer: a NaN in the teacher's logits stops the run naming the step.</summary>
[Collection("Sequential")]
public sealed class TrainerNaNTeacherTests
{
    [Fact]
    public void Train_TeacherLogitsTurnNaNAtStep2_ErrorNamesStepObjectiveAndNaN()
    {
        using var folder = TestRuntime.CreateTempFolder();
        using var scope = NewDisposeScope();
        var trainer = new DistillationTrainer(new TinyCausalLM(seed: 1, vocab: 7, hidden: 4), TestData.Create(ObjectiveNames.ForwardKl), new NaNTeacher(nanFromCall: 2), new TrainingOptions
        {
            OutputDirectory = folder.Path,
            MaxSteps = 3,
            SaveCheckpoints = false,
            TensorBoard = false,
        });
        // Either the objective's logits guard rejects the teacher's NaN (rethrown with the step in front), or the NaN reaches
        // the loss and the trainer's non-finite guard stops the step: both name step 2, the objective and the NaN.
        var e = Assert.ThrowsAny<InvalidOperationException>(() => trainer.Train(new Source()));
        Assert.StartsWith("Step 2 (epoch 0, micro-batch", e.Message, StringComparison.Ordinal);
        Assert.Contains("'forward_kl'", e.Message, StringComparison.Ordinal);
        Assert.Contains("NaN", e.Message, StringComparison.Ordinal);
    }

    private sealed class NaNTeacher(int nanFromCall) : ITeacher
    {
        private int calls;

        public TeacherOutput Infer(DistillationBatch batch, ObjectiveRequirements requirements)
        {
            calls++;
            var logits = randn(batch.InputIds.shape[0], batch.InputIds.shape[1], 7);
            if (calls >= nanFromCall)
            {
                logits[0, 0, 0] = tensor(float.NaN);
            }

            return new TeacherOutput { Logits = logits };
        }
    }

    private sealed class Source : IBatchSource
    {
        public int BatchesPerEpoch => 4;

        public DistillationBatch GetBatch(int epoch, int index) => new()
        {
            InputIds = tensor(new long[] { 1, 2, 3, 4, 5, 6 }, [2, 3]),
            AttentionMask = ones(2, 3, dtype: ScalarType.Int64),
            Labels = tensor(new long[] { 2, 3, -100, 5, 6, 1 }, [2, 3]),
        };
    }
}
