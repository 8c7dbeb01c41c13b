using TorchSharp;
using static TorchSharp.torch;

namespace Distill.Losses.Tests;

/// <summary>
/// Fused chunked objectives equal their full-logits twins: loss, dL/dhidden and dL/dW (and dL/db) within 1e-5 relative
/// in fp32, with uneven chunks (N = 2·5 = 10 rows, chunk 3), teacher given as logits or as hidden states + lm_head.
/// </summary>
[Collection("Sequential")]
public sealed class ChunkedObjectiveTests
{
    private const long V = 13;
    private const long H = 6;

    public static TheoryData<string, bool, bool> Cases()
    {
        var data = new TheoryData<string, bool, bool>();
        // Every dense chunked variant (token-level and atkd); the sparse ones read top-k targets (SparseChunkedObjectiveTests).
        foreach (var name in ChunkedObjective.SupportedBaseNames.Except(SparseKdObjective.Names))
        {
            data.Add(name, false, false);
            data.Add(name, true, false);
            data.Add(name, true, true);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Compute_Chunked_EqualsNaiveLossAndGradients(string name, bool teacherFromHidden, bool studentBias)
    {
        using var scope = NewDisposeScope();
        Action<LossesOptions> configure = o =>
        {
            o.ChunkSize = 3;
            o.Divergence.Temperature = 1.7;
            o.Atkd.StudentTemperature = 1.3;
            o.Atkd.TeacherTemperature = 0.8;
            o.Gkd.Temperature = 0.9;
        };
        var (naiveLoss, naiveH, naiveW, naiveB, naiveCount) = Run(name, chunked: false, teacherFromHidden, studentBias, configure);
        var (loss, gradH, gradW, gradB, count) = Run(name, chunked: true, teacherFromHidden, studentBias, configure);
        Assert.Equal(naiveCount, count);
        GoldenTests.AssertClose(naiveLoss, loss, 1e-5);
        AssertRel(naiveH, gradH, "hidden");
        AssertRel(naiveW, gradW, "lm_head weight");
        if (studentBias)
        {
            AssertRel(naiveB!, gradB!, "lm_head bias");
        }
    }

    /// <summary>
    /// <c>atkd_chunked</c> through the objective API equals <c>atkd</c>: both settings, both teacher forms, official
    /// compatibility on and off, ATKD temperatures ≠ 1, uneven chunks. Both report L (a per-micro-batch mean) with
    /// normaliser 1, so LossSum and the gradients compare directly.
    /// </summary>
    [Theory]
    [InlineData(AtkdSetting.Vanilla, false, false)]
    [InlineData(AtkdSetting.Vanilla, true, true)]
    [InlineData(AtkdSetting.Reverse, false, true)]
    [InlineData(AtkdSetting.Reverse, true, false)]
    public void Compute_AtkdChunked_EqualsAtkdInBothSettingsAndTeacherForms(AtkdSetting setting, bool teacherFromHidden, bool official)
    {
        using var scope = NewDisposeScope();
        Action<LossesOptions> configure = o =>
        {
            o.ChunkSize = 3;
            o.Atkd.Setting = setting;
            o.Atkd.Alpha = 0.3;
            o.Atkd.StudentTemperature = 1.3;
            o.Atkd.TeacherTemperature = 0.8;
            o.Atkd.OfficialCompatibility = official;
        };
        var naive = Run(ObjectiveNames.Atkd, chunked: false, teacherFromHidden, studentBias: true, configure);
        var fused = Run(ObjectiveNames.Atkd, chunked: true, teacherFromHidden, studentBias: true, configure);
        Assert.Equal(naive.Count, fused.Count);
        Assert.True(double.IsFinite(naive.Loss) && naive.Loss > 0, $"naive ATKD loss {naive.Loss}");
        GoldenTests.AssertClose(naive.Loss, fused.Loss, 1e-5);
        AssertRel(naive.GradH, fused.GradH, "hidden");
        AssertRel(naive.GradW, fused.GradW, "lm_head weight");
        AssertRel(naive.GradB!, fused.GradB!, "lm_head bias");
    }

    [Fact]
    public void Create_AtkdChunked_ReportsAMicroBatchMeanLikeAtkd()
    {
        using var scope = NewDisposeScope();
        var objective = DistillObjectives.Create("atkd_chunked", new LossesOptions { ChunkSize = 4 });
        Assert.Equal("atkd_chunked", objective.Name);
        Assert.True(objective.Requirements.NeedsStudentHiddenStates);
        Assert.False(objective.Requirements.NeedsStudentLogits);
        var model = new TinyCausalLM(seed: 21, vocab: V, hidden: H);
        var labels = TestData.Labels(22, 2, 5, V, (1, 1));
        var r = objective.Compute(new ObjectiveContext
        {
            Batch = TestData.Batch(labels),
            Student = new CausalLMOutput(null, randn(2, 5, H, generator: new Generator(23)), null),
            Teacher = new TeacherOutput { Logits = TestData.Logits(24, 2, 5, V) },
            StudentModel = model,
        });
        Assert.Equal(1f, r.Normalizer.item<float>());
        Assert.Equal(9L, r.ScoredTokens.item<long>());
    }

    [Theory]
    [InlineData(0.3, 1.0)]
    [InlineData(1.0, 1.0)]
    [InlineData(1.0, 2.0)]
    [InlineData(0.0, 1.0)]
    [InlineData(0.6, 0.5)]
    public void Compute_ChunkedForwardKlClosedForm_MatchesNaiveAcrossRateAndTemperature(double kdRate, double temperature)
    {
        using var scope = NewDisposeScope();
        Action<LossesOptions> configure = o =>
        {
            o.ChunkSize = 4;
            o.Divergence.KdRate = kdRate;
            o.Divergence.Temperature = temperature;
        };
        var naive = Run(ObjectiveNames.ForwardKl, chunked: false, teacherFromHidden: false, studentBias: true, configure);
        var fused = Run(ObjectiveNames.ForwardKl, chunked: true, teacherFromHidden: true, studentBias: true, configure);
        GoldenTests.AssertClose(naive.Loss, fused.Loss, 1e-5);
        AssertRel(naive.GradH, fused.GradH, "hidden");
        AssertRel(naive.GradW, fused.GradW, "lm_head weight");
        AssertRel(naive.GradB!, fused.GradB!, "lm_head bias");
    }

    [Fact]
    public void Compute_ChunkedForwardKlWithInfiniteLogits_FallsBackAndMatchesNaive()
    {
        using var scope = NewDisposeScope();
        var model = new TinyCausalLM(seed: 5, vocab: V, hidden: H);
        var labels = TestData.Labels(6, 2, 5, V, (0, 0));
        var t = TestData.Logits(7, 2, 5, V);
        t[1, 1, 4] = tensor(float.NegativeInfinity);
        var h1 = (randn(2, 5, H, generator: new Generator(8)) * 0.5).requires_grad_(true);
        var naive = TestData.Create(ObjectiveNames.ForwardKl).Compute(new ObjectiveContext
        {
            Batch = TestData.Batch(labels),
            Student = new CausalLMOutput(nn.functional.linear(h1, model.LmHeadWeight), null, null),
            Teacher = new TeacherOutput { Logits = t },
            StudentModel = model,
        });
        naive.LossSum.backward();
        var h2 = h1.detach().clone().requires_grad_(true);
        var chunked = TestData.Create(ObjectiveNames.ForwardKl + ObjectiveNames.ChunkedSuffix, o => o.ChunkSize = 4).Compute(new ObjectiveContext
        {
            Batch = TestData.Batch(labels),
            Student = new CausalLMOutput(null, h2, null),
            Teacher = new TeacherOutput { Logits = t },
            StudentModel = model,
        });
        chunked.LossSum.backward();
        Assert.True(double.IsFinite(TestData.Value(chunked.LossSum)));
        GoldenTests.AssertClose(TestData.Value(naive.LossSum), TestData.Value(chunked.LossSum), 1e-5);
        AssertRel(h1.grad!, h2.grad!, "hidden");
    }

    [Fact]
    public void Compute_ChunkedRequirements_AskForHiddenStatesNotLogits()
    {
        var o = TestData.Create("reverse_kl_chunked");
        Assert.False(o.Requirements.NeedsStudentLogits);
        Assert.True(o.Requirements.NeedsStudentHiddenStates);
        Assert.True(o.Requirements.NeedsTeacherHiddenStates);
        Assert.False(o.Requirements.NeedsTeacherLogits);
        var sft = TestData.Create("sft_chunked");
        Assert.False(sft.Requirements.NeedsTeacher);
        var logitsTeacher = TestData.Create("reverse_kl_chunked", x => x.ChunkedTeacherFromHiddenStates = false);
        Assert.True(logitsTeacher.Requirements.NeedsTeacherLogits);
    }

    [Fact]
    public void Compute_ChunkedWithNaNHidden_ReportsBatchAndToken()
    {
        using var scope = NewDisposeScope();
        var model = new TinyCausalLM(seed: 9, vocab: V, hidden: H);
        var h = randn(2, 5, H);
        h[1, 3, 0] = tensor(float.NaN);
        var ex = Assert.Throws<ArgumentException>(() => TestData.Create("sft_chunked", o =>
        {
            o.ChunkSize = 3;
            o.CheckFinite = true;
        }).Compute(new ObjectiveContext
        {
            Batch = TestData.Batch(TestData.Labels(10, 2, 5, V)),
            Student = new CausalLMOutput(null, h, null),
            StudentModel = model,
        }));
        Assert.Contains("(batch 1, token 3,", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Compute_ChunkedVocabularyMismatch_ThrowsUnlessSliced()
    {
        using var scope = NewDisposeScope();
        var model = new TinyCausalLM(seed: 11, vocab: V, hidden: H);
        var teacher = new TinyCausalLM(seed: 12, vocab: V + 2, hidden: 4);
        var labels = TestData.Labels(13, 2, 5, V);
        ObjectiveContext Ctx(Tensor h) => new()
        {
            Batch = TestData.Batch(labels),
            Student = new CausalLMOutput(null, h, null),
            Teacher = new TeacherOutput { HiddenStates = randn(2, 5, 4, generator: new Generator(14)) },
            StudentModel = model,
            TeacherModel = teacher,
        };
        var ex = Assert.Throws<ArgumentException>(() => TestData.Create("forward_kl_chunked").Compute(Ctx(randn(2, 5, H))));
        Assert.Contains($"V = {V + 2}", ex.Message, StringComparison.Ordinal);
        var h = randn(2, 5, H, generator: new Generator(15)).requires_grad_(true);
        var sliced = TestData.Create("forward_kl_chunked", o => o.SliceToSharedVocabulary = true).Compute(Ctx(h));
        var teacherLogits = nn.functional.linear(randn(2, 5, 4, generator: new Generator(14)), teacher.LmHeadWeight).detach();
        var naive = TestData.Create("forward_kl", o => o.SliceToSharedVocabulary = true).Compute(
            TestData.Context(nn.functional.linear(h, model.LmHeadWeight), teacherLogits, labels, model));
        GoldenTests.AssertClose(TestData.Value(naive.LossSum), TestData.Value(sliced.LossSum), 1e-5);
    }

    [Fact]
    public void Kernel_TenSteps_KeepsLiveTensorCountFlat()
    {
        var model = new TinyCausalLM(seed: 16, vocab: V, hidden: H);
        var objective = TestData.Create("js_divergence_chunked", o => o.ChunkSize = 4);
        var labels = TestData.Labels(17, 2, 5, V, (0, 1));
        var teacherLogits = TestData.Logits(18, 2, 5, V);
        long Step()
        {
            using (var step = NewDisposeScope())
            {
                var h = randn(2, 5, H).requires_grad_(true);
                var r = objective.Compute(new ObjectiveContext
                {
                    Batch = TestData.Batch(labels),
                    Student = new CausalLMOutput(null, h, null),
                    Teacher = new TeacherOutput { Logits = teacherLogits },
                    StudentModel = model,
                });
                r.LossSum.backward();
            }

            model.Module.zero_grad();
            return DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        }

        Step();
        var after1 = Step();
        for (var i = 0; i < 8; i++)
        {
            Step();
        }

        Assert.True(Step() <= after1, "live tensors grew across steps");
    }

    private static (double Loss, Tensor GradH, Tensor GradW, Tensor? GradB, long Count) Run(
        string name, bool chunked, bool teacherFromHidden, bool studentBias, Action<LossesOptions> configure)
    {
        var student = new TinyCausalLM(seed: 1, vocab: V, hidden: H, withBias: studentBias);
        var teacher = new TinyCausalLM(seed: 2, vocab: V, hidden: 4, withBias: true);
        var labels = TestData.Labels(3, 2, 5, V, (0, 0), (1, 4));
        var hidden = (randn(2, 5, H, generator: new Generator(4)) * 0.7).requires_grad_(true);
        var teacherHidden = randn(2, 5, 4, generator: new Generator(5));
        Tensor teacherLogits;
        using (no_grad())
        {
            teacherLogits = nn.functional.linear(teacherHidden, teacher.LmHeadWeight, teacher.LmHeadBias);
        }

        var objective = TestData.Create(chunked ? name + ObjectiveNames.ChunkedSuffix : name, configure);
        var ctx = new ObjectiveContext
        {
            Batch = TestData.Batch(labels),
            Student = chunked
                ? new CausalLMOutput(null, hidden, null)
                : new CausalLMOutput(nn.functional.linear(hidden, student.LmHeadWeight, student.LmHeadBias), null, null),
            Teacher = chunked && teacherFromHidden ? new TeacherOutput { HiddenStates = teacherHidden } : new TeacherOutput { Logits = teacherLogits },
            StudentModel = student,
            TeacherModel = teacher,
        };
        var r = objective.Compute(ctx);
        r.LossSum.backward();
        return (TestData.Value(r.LossSum), hidden.grad!, student.LmHeadWeight.grad!, student.LmHeadBias?.grad, r.ScoredTokens.item<long>());
    }

    private static void AssertRel(Tensor expected, Tensor actual, string what)
    {
        var err = (actual - expected).abs().max().item<float>() / Math.Max(expected.abs().max().item<float>(), 1e-12f);
        Assert.True(err <= 1e-5, $"{what}: max |Δ| / max |ref| = {err:E2}; expected {expected.ToString(TorchSharp.TensorStringStyle.Julia)} actual {actual.ToString(TorchSharp.TensorStringStyle.Julia)}");
    }
}
