using Distill.Eval.Diagnostics;
using Distill.Tests.Shared;
using TorchSharp;
using static TorchSharp.torch;

namespace Distill.Eval.Tests.Diagnostics;

public sealed class DistillationDiagnosticsTests
{
    [Fact]
    public void Compute_IdenticalLogits_AgreeFullyWithZeroKl()
    {
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(1);
        var logits = torch.randn(2, 5, 13);
        var result = DistillationDiagnostics.Compute(logits, logits.clone(), torch.ones(2, 5, ScalarType.Bool), topK: 3);
        Assert.Equal(10, result.TokenCount);
        Assert.Equal(1.0, result.Top1Agreement);
        Assert.Equal(1.0, result.TopKOverlap, 12);
        Assert.Equal(0.0, result.MeanKl, 6);
    }

    [Fact]
    public void Compute_HandExample_MatchesHandDerivation()
    {
        // Two positions over V = 4; the second is masked out by its label −100 and must not count.
        // Position 0: student logits ln[4,3,2,1] → q = [.4,.3,.2,.1]; teacher ln[1,2,3,4] → p = [.1,.2,.3,.4].
        //   top-1: student 0, teacher 3 → disagree. top-2: {0,1} vs {3,2} → overlap 0/2.
        //   KL(p‖q) = .1 ln(.1/.4) + .2 ln(.2/.3) + .3 ln(.3/.2) + .4 ln(.4/.1) = .3 ln 4 + .1 ln 1.5 = 0.4564348...
        using var scope = torch.NewDisposeScope();
        var s = new[] { 4f, 3f, 2f, 1f }.Select(x => MathF.Log(x)).ToArray();
        var t = new[] { 1f, 2f, 3f, 4f }.Select(x => MathF.Log(x)).ToArray();
        var student = torch.tensor(s.Concat(s).ToArray()).reshape(1, 2, 4);
        var teacher = torch.tensor(t.Concat(s).ToArray()).reshape(1, 2, 4);
        var labels = torch.tensor(new long[] { 5, -100 }).reshape(1, 2);

        var result = DistillationDiagnostics.Compute(student, teacher, labels, topK: 2);

        Assert.Equal(1, result.TokenCount);
        Assert.Equal(0.0, result.Top1Agreement);
        Assert.Equal(0.0, result.TopKOverlap);
        Assert.Equal((0.3 * Math.Log(4)) + (0.1 * Math.Log(1.5)), result.MeanKl, 5);
    }

    [Fact]
    public void Compute_PartialTopKOverlap_CountsIntersection()
    {
        // student top-3 {0,1,2}, teacher top-3 {2,1,4}: intersection {1,2} → 2/3; argmax 0 vs 2 → disagree.
        using var scope = torch.NewDisposeScope();
        var student = torch.tensor(new float[] { 5, 4, 3, 0, -1 }).reshape(1, 5);
        var teacher = torch.tensor(new float[] { -2, 4, 5, 0, 3 }).reshape(1, 5);
        var result = DistillationDiagnostics.Compute(student, teacher, torch.ones(1, ScalarType.Bool), topK: 3);
        Assert.Equal(2.0 / 3.0, result.TopKOverlap, 12);
        Assert.Equal(0.0, result.Top1Agreement);
    }

    [Fact]
    public void Add_TwoBatches_EqualsOneBatch()
    {
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(2);
        var student = torch.randn(4, 6, 9);
        var teacher = torch.randn(4, 6, 9);
        var mask = torch.rand(4, 6).gt(0.3);
        var whole = DistillationDiagnostics.Compute(student, teacher, mask, topK: 4);
        var parts = DistillationDiagnostics.Compute(student[..2], teacher[..2], mask[..2], topK: 4)
            .Add(DistillationDiagnostics.Compute(student[2..], teacher[2..], mask[2..], topK: 4));
        Assert.Equal(whole.TokenCount, parts.TokenCount);
        Assert.Equal(whole.Top1Matches, parts.Top1Matches);
        Assert.Equal(whole.TopKOverlap, parts.TopKOverlap, 12);
        Assert.Equal(whole.MeanKl, parts.MeanKl, 5);
    }

    [Fact]
    public void Compute_OnEachDevice_MatchesCpuAndLeaksNothing()
    {
        torch.manual_seed(5);
        using var student = torch.randn(3, 7, 17);
        using var teacher = torch.randn(3, 7, 17);
        using var labels = torch.randint(0, 17, [3, 7]);
        labels[0, 0] = torch.tensor(-100L);
        var expected = DistillationDiagnostics.Compute(student, teacher, labels, topK: 5);
        foreach (var device in TestRuntime.Devices())
        {
            using var s = student.to(device);
            using var t = teacher.to(device);
            using var l = labels.to(device);
            var before = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
            for (var i = 0; i < 10; i++)
            {
                var actual = DistillationDiagnostics.Compute(s, t, l, topK: 5);
                Assert.Equal(20, actual.TokenCount);
                Assert.Equal(expected.Top1Matches, actual.Top1Matches);
                Assert.Equal(expected.TopKOverlap, actual.TopKOverlap, 12);
                Assert.Equal(expected.MeanKl, actual.MeanKl, 4);
            }

            Assert.Equal(before, DisposeScopeManager.Statistics.ThreadTotalLiveCount);
        }
    }

    [Fact]
    public void Compute_Models_EqualsLogitsPathOverAllBatches()
    {
        torch.manual_seed(6);
        using var student = new Metrics.PerplexityTests.TinyLm(vocab: 10, hidden: 3);
        using var teacher = new Metrics.PerplexityTests.TinyLm(vocab: 10, hidden: 5);
        student.eval();
        teacher.train();
        using var ids1 = torch.tensor(new long[,] { { 1, 2, 3 }, { 4, 5, 6 } });
        using var ids2 = torch.tensor(new long[,] { { 7, 8, 9 } });
        using var b1 = new DistillationBatch { InputIds = ids1.clone(), AttentionMask = torch.ones(2, 3, ScalarType.Int64), Labels = torch.tensor(new long[,] { { 2, 3, -100 }, { 5, 6, 7 } }) };
        using var b2 = new DistillationBatch { InputIds = ids2.clone(), AttentionMask = torch.ones(1, 3, ScalarType.Int64), Labels = torch.tensor(new long[,] { { -100, 9, 1 } }) };

        var result = DistillationDiagnostics.Compute(student, teacher, [b1, b2], topK: 3);

        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var expected = DistillationDiagnostics.Compute(student.call(ids1), teacher.call(ids1), b1.Labels, 3)
            .Add(DistillationDiagnostics.Compute(student.call(ids2), teacher.call(ids2), b2.Labels, 3));
        Assert.Equal(7, result.TokenCount);
        Assert.Equal(expected.Top1Matches, result.Top1Matches);
        Assert.Equal(expected.TopKOverlapSum, result.TopKOverlapSum, 12);
        Assert.Equal(expected.KlSum, result.KlSum, 5);
        Assert.True(teacher.training);
        Assert.False(student.training);
    }

    [Fact]
    public void Compute_VocabularyMismatch_ThrowsNamingShapes()
    {
        using var scope = torch.NewDisposeScope();
        var ex = Assert.Throws<ArgumentException>(() =>
            DistillationDiagnostics.Compute(torch.zeros(1, 2, 5), torch.zeros(1, 2, 6), torch.ones(1, 2, ScalarType.Bool)));
        Assert.Contains("[1, 2, 5]", ex.Message, StringComparison.Ordinal);
        Assert.Contains("[1, 2, 6]", ex.Message, StringComparison.Ordinal);
    }
}
