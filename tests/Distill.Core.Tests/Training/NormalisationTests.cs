using Distill.Tests.Shared;
using Distill.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Distill.Core.Tests.Training;

[Collection("Sequential")]
public class NormalisationTests
{
    private const int Vocab = 11;
    private const int Hidden = 8;

    private static Tensor CeSum(TinyCausalLM model, DistillationBatch b)
    {
        var logits = model.Forward(new CausalLMInput { InputIds = b.InputIds, AttentionMask = b.AttentionMask }).Logits!;
        return nn.functional.cross_entropy(logits.reshape(-1, Vocab), b.Labels.reshape(-1), ignore_index: -100, reduction: nn.Reduction.Sum);
    }

    [Fact]
    public void RunStep_MicroBatchesWithDifferentTokenCounts_NormalisesByWindowTokenCount()
    {
        using var scope = NewDisposeScope();
        using var tmp = new TempFolder();
        var data = new SyntheticBatchSource(examples: 4, batchSize: 1, vocab: Vocab, seed: 3, minLength: 4, maxLength: 14);
        using var b0 = data.GetBatch(0, 0);
        using var b1 = data.GetBatch(0, 1);
        long n0 = b0.CountValidTokens(), n1 = b1.CountValidTokens();
        Assert.NotEqual(n0, n1); // otherwise window-mean and mean-of-means coincide and the test proves nothing
        long n = n0 + n1;

        var model = new TinyCausalLM(Vocab, Hidden, seed: 1);
        var options = new TrainingOptions { GradientAccumulationSteps = 2, MaxGradNorm = null, OutputDirectory = tmp.Path, SaveCheckpoints = false, TensorBoard = false };
        var trainer = new DistillationTrainer(model, new SumCrossEntropyObjective(), null, options);
        var groups = ParameterGroups.Build(model, null, options);
        var stats = trainer.RunStep(data, groups);

        // DSKD, single process: for each micro-batch i, backward(loss_sum_i / N_window), with N_window = n0 + n1; no GA division.
        var dskd = new TinyCausalLM(Vocab, Hidden, seed: 2);
        dskd.CopyFrom(model);
        var s0 = CeSum(dskd, b0);
        (s0 / n).backward();
        var s1 = CeSum(dskd, b1);
        (s1 / n).backward();

        // The wrong normalisation (mean of per-micro-batch means, HF-style GA) for contrast.
        var meanOfMeans = new TinyCausalLM(Vocab, Hidden, seed: 2);
        meanOfMeans.CopyFrom(model);
        ((CeSum(meanOfMeans, b0) / n0 / 2) + (CeSum(meanOfMeans, b1) / n1 / 2)).backward();

        Assert.Equal(n, stats.Tokens);
        Assert.Equal((s0.item<float>() + s1.item<float>()) / n, stats.Loss, 5);
        var expected = dskd.named_parameters().ToDictionary(p => p.name, p => p.parameter.grad!);
        var wrong = meanOfMeans.named_parameters().ToDictionary(p => p.name, p => p.parameter.grad!);
        foreach (var (name, p) in model.named_parameters())
        {
            Assert.True(p.grad!.allclose(expected[name], rtol: 1e-5, atol: 1e-7), $"gradient of {name} differs from DSKD's window normalisation");
        }

        Assert.Contains(model.named_parameters(), p => !p.parameter.grad!.allclose(wrong[p.name], rtol: 1e-3, atol: 1e-6));
    }

    [Fact]
    public void RunStep_AllLabelsMasked_GivesZeroGradientsNotNaN()
    {
        using var scope = NewDisposeScope();
        using var tmp = new TempFolder();
        var model = new TinyCausalLM(Vocab, Hidden, seed: 1);
        var options = new TrainingOptions { MaxGradNorm = 1.0, OutputDirectory = tmp.Path, SaveCheckpoints = false, TensorBoard = false };
        var trainer = new DistillationTrainer(model, new SumCrossEntropyObjective(), null, options);
        var groups = ParameterGroups.Build(model, null, options);
        var stats = trainer.RunStep(new MaskedSource(), groups);
        Assert.Equal(0, stats.Tokens);
        Assert.Equal(0.0, stats.Loss);
        Assert.Equal(0.0, stats.GradNorm);
    }

    private sealed class MaskedSource : IBatchSource
    {
        public int BatchesPerEpoch => 1;

        public DistillationBatch GetBatch(int epoch, int index) => new()
        {
            InputIds = torch.tensor(new long[] { 1, 2, 3 }, [1, 3]),
            AttentionMask = torch.ones(1, 3, dtype: ScalarType.Int64),
            Labels = torch.full(1, 3, -100L, dtype: ScalarType.Int64),
        };
    }
}
