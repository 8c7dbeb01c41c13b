using Distill.Losses.DualSpace;
using static TorchSharp.torch;

namespace Distill.Losses.Tests.CrossTokenizer;

/// <summary>
/// DSKD with one vocabulary against <c>dual_space_kd.py</c> (goldens from <c>fixtures/crosstok/make_goldens.py</c>, case "dskd":
/// B = 2, L = 7, V = 11, d_s = 6, d_t = 8, T = 2, α = 0.5, labels with prompt/padding −100).
/// </summary>
public sealed class DskdTests
{
    [Fact]
    public void Compute_OfficialForwardKlCase_MatchesLossTermsAndGradients()
    {
        using var scope = NewDisposeScope();
        var (objective, context, zs, hs) = Build();

        var result = objective.Compute(context);
        result.LossSum.backward();

        const string p = "dskd.forward_kl";
        CrossTokGoldens.AssertScalar(p + ".loss", result.LossSum);
        CrossTokGoldens.AssertScalar(p + ".ce", result.Metrics["ce"]);
        CrossTokGoldens.AssertScalar(p + ".t2s_ce", result.Metrics["t2s_ce"]);
        CrossTokGoldens.AssertScalar(p + ".t2s_kd", result.Metrics["t2s_kd"]);
        CrossTokGoldens.AssertScalar(p + ".s2t_kd", result.Metrics["s2t_kd"]);
        CrossTokGoldens.AssertScalar(p + ".t2s_acc", result.Metrics["t2s_acc"]);
        Assert.Equal(10, result.ScoredTokens.item<long>()); // 4 + 6 student labels ≠ −100
        CrossTokGoldens.AssertClose(p + ".grad.student_logits", zs.grad!);
        CrossTokGoldens.AssertClose(p + ".grad.student_hidden", hs.grad!);
        DualSpaceFixtures.AssertProjectorGrads(p + ".grad", objective.Projectors, withQuery: false);
    }

    [Theory]
    [InlineData("forward_kl")]
    [InlineData("reverse_kl")]
    [InlineData("js_divergence")]
    [InlineData("skewed_forward_kl")]
    [InlineData("skewed_reverse_kl")]
    [InlineData("adaptive_kl")]
    public void Compute_EachDskdDistance_MatchesOfficialLossAndStudentGradient(string distance)
    {
        using var scope = NewDisposeScope();
        var (objective, context, zs, _) = Build(distance);

        var result = objective.Compute(context);
        result.LossSum.backward();

        // Only the student-space term changes with --kd-objective; s2t_kd stays forward KL (DSKD v1).
        var p = "dskd." + distance;
        CrossTokGoldens.AssertScalar(p + ".t2s_kd", result.Metrics["t2s_kd"]);
        CrossTokGoldens.AssertScalar(p + ".s2t_kd", result.Metrics["s2t_kd"]);
        CrossTokGoldens.AssertScalar(p + ".loss", result.LossSum);
        CrossTokGoldens.AssertClose(p + ".grad.student_logits", zs.grad!);
    }

    [Fact]
    public void Compute_Backward_ProjectorsReceiveGradientsOnlyFromTheirOwnTerms()
    {
        using var scope = NewDisposeScope();
        var (objective, context, _, _) = Build();
        var result = objective.Compute(context);
        result.LossSum.backward();

        // t2s is trained by t2s_ce (weight α = 0.5), s2t by s2t_kd: both must be non-zero.
        Assert.True(objective.Projectors.TeacherToStudent.weight!.grad!.abs().sum().item<float>() > 0);
        Assert.True(objective.Projectors.StudentToTeacher.weight!.grad!.abs().sum().item<float>() > 0);
        // The frozen lm_heads and the teacher tensors get nothing.
        Assert.Null(context.StudentModel!.LmHeadWeight.grad);
        Assert.Null(context.Teacher!.HiddenStates!.grad);
    }

    [Fact]
    public void Compute_DifferentVocabularies_ThrowsNamingBothSizes()
    {
        using var scope = NewDisposeScope();
        var (objective, context, _, _) = Build();
        var wide = new ObjectiveContext
        {
            Batch = context.Batch,
            Student = context.Student,
            Teacher = new TeacherOutput { Logits = randn(2, 7, 13), HiddenStates = context.Teacher!.HiddenStates },
            StudentModel = context.StudentModel,
            TeacherModel = context.TeacherModel,
        };

        var ex = Assert.Throws<InvalidOperationException>(() => objective.Compute(wide));
        Assert.Contains("11", ex.Message, StringComparison.Ordinal);
        Assert.Contains("13", ex.Message, StringComparison.Ordinal);
        Assert.Contains("dskd_cma", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Initialize_DifferentVocabularySizes_Throws()
    {
        using var scope = NewDisposeScope();
        using var student = new FakeCausalLM(randn(11, 6));
        using var teacher = new FakeCausalLM(randn(13, 8));
        var objective = new DskdObjective();

        var ex = Assert.Throws<ArgumentException>(() => objective.Initialize(student, teacher));
        Assert.Contains("13", ex.Message, StringComparison.Ordinal);
        Assert.False(objective.IsInitialized);
    }

    [Fact]
    public void Module_BeforeInitialize_ThrowsAndAfterwardsHasDskdShapes()
    {
        using var scope = NewDisposeScope();
        using var student = new FakeCausalLM(randn(11, 6));
        using var teacher = new FakeCausalLM(randn(11, 8));
        var objective = new DskdObjective();
        Assert.Throws<InvalidOperationException>(() => objective.Module);

        objective.Initialize(student, teacher);
        objective.Initialize(student, teacher); // idempotent

        var shapes = objective.Module.named_parameters().ToDictionary(p => p.name, p => p.parameter.shape);
        Assert.Equal(["s2t.bias", "s2t.weight", "t2s.bias", "t2s.weight"], shapes.Keys.Order(StringComparer.Ordinal));
        Assert.Equal([6L, 8L], shapes["t2s.weight"]);
        Assert.Equal([8L, 6L], shapes["s2t.weight"]);
    }

    [Fact]
    public void Constructor_InvalidOptions_ListsEveryViolation()
    {
        var ex = Assert.Throws<ArgumentException>(() => new DskdObjective(new DskdOptions { Alpha = 1.5, Temperature = 0, Distance = "nope" }));
        Assert.Contains("DskdOptions.Alpha", ex.Message, StringComparison.Ordinal);
        Assert.Contains("DskdOptions.Temperature", ex.Message, StringComparison.Ordinal);
        Assert.Contains("'nope'", ex.Message, StringComparison.Ordinal);
    }

    internal static (DskdObjective Objective, ObjectiveContext Context, Tensor StudentLogits, Tensor StudentHidden) Build(string distance = "forward_kl")
    {
        var zs = CrossTokGoldens.Float("dskd.student_logits", requiresGrad: true);
        var hs = CrossTokGoldens.Float("dskd.student_hidden", requiresGrad: true);
        var labels = CrossTokGoldens.Long("dskd.labels");
        var student = new FakeCausalLM(CrossTokGoldens.Float("dskd.student_lm_head"));
        var teacher = new FakeCausalLM(CrossTokGoldens.Float("dskd.teacher_lm_head"));
        var projectors = DualSpaceFixtures.Projectors("dskd", 6, 8, withQuery: false);
        var objective = new DskdObjective(new DskdOptions { Distance = distance, Temperature = CrossTokGoldens.Scalar("dskd.temperature"), Alpha = CrossTokGoldens.Scalar("dskd.alpha") }, projectors);
        var context = new ObjectiveContext
        {
            Batch = new DistillationBatch { InputIds = zeros(2, 7, dtype: ScalarType.Int64), AttentionMask = ones(2, 7, dtype: ScalarType.Int64), Labels = labels },
            Student = new CausalLMOutput(zs, hs, null),
            Teacher = new TeacherOutput { Logits = CrossTokGoldens.Float("dskd.teacher_logits"), HiddenStates = CrossTokGoldens.Float("dskd.teacher_hidden") },
            StudentModel = student,
            TeacherModel = teacher,
        };
        return (objective, context, zs, hs);
    }
}
