using Distill.Losses.Tests.Declarations;
using Microsoft.Extensions.DependencyInjection;
using static TorchSharp.torch;

namespace Distill.Losses.Tests;

/// <summary>
/// One declaration per objective: a divergence defined in this test project gets the plain and the fused chunked objective,
/// DI registration and creation without DI from its one declaration; built-ins are created by name without DI.
/// </summary>
public sealed class DeclarationTests
{
    [Fact]
    public void Create_TestDeclaredDivergence_MatchesHandComputedValue()
    {
        // s = [0, 0] → q = [½, ½]; t = [ln 3, 0] → p = [¾, ¼]; label 0.
        // H² = 1 − (√(3/8) + √(1/8)) = 0.0340741737; CE = ln 2 = 0.6931471806; α = ½ → ½·CE + ½·H² = 0.3636106771.
        using var scope = NewDisposeScope();
        var s = zeros(1, 1, 2);
        var t = tensor(new[] { (float)Math.Log(3), 0f }).reshape(1, 1, 2);
        var y = zeros(1, 1, dtype: ScalarType.Int64);
        var r = Hellinger.Declaration.Create(new LossesOptions { Divergence = { Temperature = 1.0 } }).Compute(TestData.Context(s, t, y));
        GoldenTests.AssertClose(0.3636106771, TestData.Value(r.LossSum), 1e-6);
        GoldenTests.AssertClose(0.0340741737, TestData.Value(r.Metrics["kd"]), 1e-6);
        Assert.Equal(1f, r.Normalizer.item<float>());
        Assert.Equal(1L, r.ScoredTokens.item<long>());
    }

    [Fact]
    public void AddDistillObjective_TestDeclaredDivergence_ServesPlainAndChunkedWithEqualLossAndGradients()
    {
        using var scope = NewDisposeScope();
        var services = new ServiceCollection();
        services.AddDistill().AddDistillLosses(o =>
        {
            o.ChunkSize = 3;
            o.Divergence.Temperature = 1.7;
        }).AddDistillObjective(Hellinger.Declaration);
        using var sp = services.BuildServiceProvider();
        var factory = sp.GetRequiredService<IObjectiveFactory>();
        Assert.Contains("hellinger", factory.Names);
        Assert.Contains("hellinger_chunked", factory.Names);

        var student = new TinyCausalLM(seed: 1, vocab: 13, hidden: 6);
        var labels = TestData.Labels(3, 2, 5, 13, (0, 0), (1, 4));
        var teacherLogits = TestData.Logits(5, 2, 5, 13);
        var hidden = (randn(2, 5, 6, generator: new Generator(4)) * 0.7).requires_grad_(true);
        var plain = factory.Create("hellinger").Compute(TestData.Context(nn.functional.linear(hidden, student.LmHeadWeight), teacherLogits, labels));
        plain.LossSum.backward();
        var plainGrad = hidden.grad!.clone();
        hidden.grad!.zero_();
        var chunked = factory.Create("hellinger_chunked").Compute(new ObjectiveContext
        {
            Batch = TestData.Batch(labels),
            Student = new CausalLMOutput(null, hidden, null),
            Teacher = new TeacherOutput { Logits = teacherLogits },
            StudentModel = student,
        });
        chunked.LossSum.backward();
        GoldenTests.AssertClose(TestData.Value(plain.LossSum), TestData.Value(chunked.LossSum), 1e-5);
        Assert.True((hidden.grad! - plainGrad).abs().max().item<float>() <= 1e-5f * plainGrad.abs().max().item<float>());
        Assert.Equal(8L, chunked.ScoredTokens.item<long>());
    }

    [Fact]
    public void Create_WithoutDiAndWithoutModel_EqualsTheDiObjective()
    {
        using var scope = NewDisposeScope();
        var y = TestData.Labels(11, 2, 4, 9, (0, 0));
        var s = TestData.Logits(12, 2, 4, 9);
        var t = TestData.Logits(13, 2, 4, 9);
        var noModel = new ObjectiveContext { Batch = TestData.Batch(y), Student = new CausalLMOutput(s, null, null), Teacher = new TeacherOutput { Logits = t } };
        var direct = DistillObjectives.Create(ObjectiveNames.ReverseKl, new LossesOptions { Divergence = { KdRate = 0.3 } }).Compute(noModel);
        var viaDi = TestData.Create(ObjectiveNames.ReverseKl, o => o.Divergence.KdRate = 0.3).Compute(TestData.Context(s, t, y));
        Assert.Equal(TestData.Value(viaDi.LossSum), TestData.Value(direct.LossSum));
        Assert.Equal(7L, direct.ScoredTokens.item<long>());
    }

    [Fact]
    public void Names_WithoutDi_AreExactlyTheNamesAddDistillLossesRegisters()
    {
        var services = new ServiceCollection();
        services.AddDistill().AddDistillLosses();
        using var sp = services.BuildServiceProvider();
        var registered = sp.GetRequiredService<IObjectiveFactory>().Names.Order(StringComparer.Ordinal);
        Assert.Equal(registered, DistillObjectives.Names.Order(StringComparer.Ordinal));
        foreach (var name in DistillObjectives.Names.Where(n => n is not ("min_ed" or "min_edit_dis_kld")))
        {
            Assert.Equal(name.Replace("dual_space_kd_with_cma", "dskd_cma", StringComparison.Ordinal).Replace("dual_space_kd", "dskd", StringComparison.Ordinal)
                .Replace("universal_logit_distillation", "uld_dskd", StringComparison.Ordinal), DistillObjectives.Create(name).Name);
        }
    }

    [Fact]
    public void Create_UnknownNameOrInvalidOptions_ThrowsNamingTheProblem()
    {
        var unknown = Assert.Throws<ArgumentException>(() => DistillObjectives.Create("forward-kl"));
        Assert.Contains("forward_kl", unknown.Message, StringComparison.Ordinal);
        var invalid = Assert.Throws<ArgumentException>(() => DistillObjectives.Create(ObjectiveNames.ForwardKl, new LossesOptions { Divergence = { KdRate = 2 }, CrossTokenizer = { Uld = { Lambda = -1 } } }));
        Assert.Contains("KdRate", invalid.Message, StringComparison.Ordinal);
        Assert.Contains("Uld.Lambda", invalid.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Compute_EveryBuiltInLogitsObjective_KeepsCountsOnTheDeviceAsTensors()
    {
        using var scope = NewDisposeScope();
        var y = TestData.Labels(21, 2, 3, 7, (1, 2));
        var ctx = TestData.Context(TestData.Logits(22, 2, 3, 7), TestData.Logits(23, 2, 3, 7), y);
        foreach (var d in DistillObjectives.BuiltIn.Where(d => d.Requirements.NeedsStudentLogits && !d.Requirements.NeedsStudentHiddenStates && !d.Requirements.RequiresTeacherTokens && !(d.Requirements.AcceptsSparseTopK && !d.Requirements.NeedsTeacherLogits)))
        {
            var r = d.Create().Compute(ctx);
            Assert.Equal(ScalarType.Float32, r.Normalizer.dtype);
            Assert.Equal(ScalarType.Int64, r.ScoredTokens.dtype);
            Assert.Equal(0, r.Normalizer.dim());
            Assert.Equal(5L, r.ScoredTokens.item<long>());
        }
    }

    [Fact]
    public void DskdDistance_IsAnyDivergenceSectionDeclaration_AndNothingElse()
    {
        var names = DistillObjectives.BuiltIn.Where(d => d.OptionsSection == nameof(LossesOptions.Divergence)).Select(d => d.Name).ToArray();
        Assert.Equal(6, names.Length);
        foreach (var name in names)
        {
            Assert.Equal("dskd", DistillObjectives.Create("dskd", new LossesOptions { CrossTokenizer = { Dskd = { Distance = name } } }).Name);
        }

        var ex = Assert.Throws<ArgumentException>(() => DistillObjectives.Create("dskd", new LossesOptions { CrossTokenizer = { Dskd = { Distance = ObjectiveNames.GkdJsd } } }));
        Assert.Contains("'gkd_jsd' is not one of: forward_kl", ex.Message, StringComparison.Ordinal);
    }
}
