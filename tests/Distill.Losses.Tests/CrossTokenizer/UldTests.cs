using Distill.Losses.CrossTokenizer;
using static TorchSharp.torch;

namespace Distill.Losses.Tests.CrossTokenizer;

/// <summary>
/// Both ULD variants against the official code: case "uld" follows llm-recipes' <c>DistillationLoss</c> with HF unshifted
/// labels (B = 3, L_s = 10, L_t = 12, V_s = 13, V_t = 9: the student vocabulary is the wider one, so the teacher side is
/// zero-padded); case "uld_dskd" follows DSKD's <c>universal_logit_distillation.py</c> (B = 3, L = 8, V_s = 11, V_t = 14).
/// </summary>
public sealed class UldTests
{
    [Theory]
    [InlineData("default")]
    [InlineData("temps")]
    public void Original_OfficialCase_MatchesLossAndGradient(string tag)
    {
        using var scope = NewDisposeScope();
        var p = "uld." + tag;
        var options = new UldOptions
        {
            Lambda = CrossTokGoldens.Scalar(p + ".lambda"),
            StudentTemperature = CrossTokGoldens.Scalar(p + ".student_temperature"),
            TeacherTemperature = CrossTokGoldens.Scalar(p + ".teacher_temperature"),
        };
        var zs = CrossTokGoldens.Float("uld.student_logits", requiresGrad: true);
        var context = Context(
            zs,
            CrossTokGoldens.Float("uld.teacher_logits"),
            ToAligned(CrossTokGoldens.Long("uld.hf_labels")),
            ToAligned(CrossTokGoldens.Long("uld.hf_t_labels")));

        var result = new UldObjective(options).Compute(context);
        result.LossSum.backward();

        Assert.Equal(1f, result.Normalizer.item<float>()); // per-batch mean: the trainer divides by the number of micro-batches
        CrossTokGoldens.AssertScalar(p + ".loss", result.LossSum);
        CrossTokGoldens.AssertScalar(p + ".ce", result.Metrics["ce"]);
        CrossTokGoldens.AssertScalar(p + ".uld", result.Metrics["uld"]);
        CrossTokGoldens.AssertClose(p + ".grad.student_logits", zs.grad!);
    }

    [Fact]
    public void Original_SampleWithoutAlignedPositions_ContributesZeroNotNaN()
    {
        using var scope = NewDisposeScope();
        // Sample 0: the student answer is only its EOS, so after skip_student_eos it has no aligned positions.
        var labels = tensor(new long[] { -100, 4, -100, -100, -100, 2, 3, 1 }, [2, 4]);
        var teacherLabels = tensor(new long[] { -100, 5, 6, -100, -100, 1, 2, -100 }, [2, 4]);
        var context = Context(randn(2, 4, 7), randn(2, 4, 9), labels, teacherLabels);

        var result = new UldObjective().Compute(context);

        Assert.True(float.IsFinite(result.LossSum.item<float>()));
    }

    [Fact]
    public void Original_LambdaZero_TrainsExactlyLikeSft()
    {
        using var scope = NewDisposeScope();
        // Rows with prompts of different lengths, answers of 1–4 tokens and right padding (labels −100 on prompt and padding):
        // with λ = 0 the loss the trainer divides (LossSum / Normalizer) and its gradient must be SFT's, token for token.
        var labels = tensor(new long[]
        {
            -100, -100, -100, 3, 5, 1, -100, -100,
            -100, 4, 2, 2, 6, 1, -100, -100,
            -100, -100, -100, -100, -100, -100, 1, -100,
        }, [3, 8]);
        var teacherLabels = tensor(new long[] { -100, 5, 7, 1, -100, -100, -100, 2, 3, -100, -100, 8, 1, -100, -100 }, [3, 5]);
        var zs = (randn(3, 8, 9) * 3).requires_grad_(true);
        var zsSft = zs.detach().clone().requires_grad_(true);

        var uld = new UldObjective(new UldOptions { Lambda = 0 }).Compute(Context(zs, randn(3, 5, 11), labels, teacherLabels));
        var sft = TestData.Create(ObjectiveNames.Sft).Compute(TestData.Context(zsSft, null, labels));
        var uldLoss = uld.LossSum / uld.Normalizer;
        var sftLoss = sft.LossSum / sft.Normalizer;
        uldLoss.backward();
        sftLoss.backward();

        Assert.Equal(sftLoss.item<float>(), uldLoss.item<float>(), 5);
        Assert.Equal(sft.ScoredTokens.item<long>(), uld.ScoredTokens.item<long>());
        Assert.True(zs.grad!.allclose(zsSft.grad!, rtol: 1e-5, atol: 1e-7), "λ = 0 ULD gradient differs from SFT's");
    }

    [Fact]
    public void Original_OneHotTeacher_RewardsTheStudentsOwnArgmaxNotTheLabel()
    {
        using var scope = NewDisposeScope();
        // The mechanism behind the cross-tokenizer sample's 0 EM: against a (near) one-hot teacher the ULD term is
        // 2·(1 − max_v p_s) per position, whichever token either side puts first. One position, label 2; the student's
        // argmax is token 0. The ULD gradient raises token 0's logit and lowers the label's: it rewards confidence, not
        // correctness.
        var labels = tensor(new long[] { -100, 2, 1 }, [1, 3]);             // answer token 2, then EOS (1, skipped)
        var teacherLabels = tensor(new long[] { -100, 4, -100 }, [1, 3]);
        var zs = tensor(new float[] { 0, 0, 0, 0, 0, 2f, 0.5f, 1f, 0, 0, 0, 0, 0, 0, 0 }, [1, 3, 5]).requires_grad_(true);
        var teacher = zeros(1, 3, 6);
        teacher[0, 1, 4] = tensor(30f);                                       // one-hot on teacher token 4
        var permuted = zeros(1, 3, 6);
        permuted[0, 1, 0] = tensor(30f);                                      // one-hot on another teacher token

        var options = new UldOptions { Lambda = 1 };
        var (_, _, term) = UldObjective.Compute(zs, teacher, labels, teacherLabels, options);
        var (_, _, samePeakElsewhere) = UldObjective.Compute(zs.detach(), permuted, labels, teacherLabels, options);
        term.backward();

        var ps = zs.detach()[0, 1].softmax(-1);
        Assert.Equal(2 * (1 - ps.max().item<float>()), term.item<float>(), 4);
        Assert.Equal(term.item<float>(), samePeakElsewhere.item<float>(), 6);
        var grad = zs.grad![0, 1];
        Assert.True(grad[0].item<float>() < 0, "descent should raise the student's argmax (token 0)");
        Assert.True(grad[2].item<float>() > 0, "descent should lower the label (token 2)");
    }

    [Fact]
    public void Dskd_OfficialCase_MatchesLossAndGradient()
    {
        using var scope = NewDisposeScope();
        var zs = CrossTokGoldens.Float("uld_dskd.student_logits", requiresGrad: true);
        var context = Context(zs, CrossTokGoldens.Float("uld_dskd.teacher_logits"), CrossTokGoldens.Long("uld_dskd.labels"), CrossTokGoldens.Long("uld_dskd.t_labels"));

        var result = new UldDskdObjective(new UldDskdOptions { Alpha = CrossTokGoldens.Scalar("uld_dskd.alpha") }).Compute(context);
        result.LossSum.backward();

        CrossTokGoldens.AssertScalar("uld_dskd.loss", result.LossSum);
        CrossTokGoldens.AssertScalar("uld_dskd.ce", result.Metrics["ce"]);
        CrossTokGoldens.AssertScalar("uld_dskd.uld", result.Metrics["uld"]);
        Assert.Equal(13, result.ScoredTokens.item<long>()); // 4 + 7 + 2 student labels
        CrossTokGoldens.AssertClose("uld_dskd.grad.student_logits", zs.grad!);
    }

    [Fact]
    public void Dskd_LongerTeacherPadding_GivesTheSameLoss()
    {
        using var scope = NewDisposeScope();
        // Two extra padded teacher positions (labels −100, arbitrary logits) must not change anything.
        var zt = cat([CrossTokGoldens.Float("uld_dskd.teacher_logits"), randn(3, 2, 14) * 5], 1);
        var yt = cat([CrossTokGoldens.Long("uld_dskd.t_labels"), full(3, 2, -100L, dtype: ScalarType.Int64)], 1);
        var context = Context(CrossTokGoldens.Float("uld_dskd.student_logits"), zt, CrossTokGoldens.Long("uld_dskd.labels"), yt);

        var result = new UldDskdObjective().Compute(context);

        CrossTokGoldens.AssertScalar("uld_dskd.loss", result.LossSum);
    }

    [Fact]
    public void BothVariants_BatchWithoutTeacherTokens_ThrowNamingTheObjective()
    {
        using var scope = NewDisposeScope();
        var labels = tensor(new long[] { -100, 1, 2, 3 }, [1, 4]);
        var context = new ObjectiveContext
        {
            Batch = new DistillationBatch { InputIds = zeros_like(labels), AttentionMask = ones_like(labels), Labels = labels },
            Student = new CausalLMOutput(randn(1, 4, 7), null, null),
            Teacher = new TeacherOutput { Logits = randn(1, 4, 9) },
            StudentModel = new FakeCausalLM(randn(7, 3)),
        };

        Assert.Contains("'uld'", Assert.Throws<InvalidOperationException>(() => new UldObjective().Compute(context)).Message, StringComparison.Ordinal);
        Assert.Contains("'uld_dskd'", Assert.Throws<InvalidOperationException>(() => new UldDskdObjective().Compute(context)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Options_Invalid_AreRejectedWithTheirNames()
    {
        Assert.Contains("UldOptions.StudentTemperature", Assert.Throws<ArgumentException>(() => new UldObjective(new UldOptions { StudentTemperature = 0 })).Message, StringComparison.Ordinal);
        Assert.Contains("UldDskdOptions.Alpha", Assert.Throws<ArgumentException>(() => new UldDskdObjective(new UldDskdOptions { Alpha = -1 })).Message, StringComparison.Ordinal);
    }

    /// <summary>HF unshifted labels → Distill's aligned labels: aligned[t] = hf[t + 1], the last position −100.</summary>
    private static Tensor ToAligned(Tensor hf) =>
        cat([hf[.., 1..], full(hf.shape[0], 1, -100L, dtype: ScalarType.Int64)], 1);

    private static ObjectiveContext Context(Tensor studentLogits, Tensor teacherLogits, Tensor labels, Tensor teacherLabels) => new()
    {
        Batch = new DistillationBatch
        {
            InputIds = zeros_like(labels),
            AttentionMask = ones_like(labels),
            Labels = labels,
            TeacherInputIds = zeros_like(teacherLabels),
            TeacherAttentionMask = ones_like(teacherLabels),
            TeacherLabels = teacherLabels,
        },
        Student = new CausalLMOutput(studentLogits, null, null),
        Teacher = new TeacherOutput { Logits = teacherLogits },
        StudentModel = new FakeCausalLM(randn(studentLogits.shape[^1], 3)),
    };
}
