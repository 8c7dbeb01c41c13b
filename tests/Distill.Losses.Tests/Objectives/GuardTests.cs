using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using static TorchSharp.torch;

namespace Distill.Losses.Tests;

/// <summary>Clear errors for bad inputs, the vocabulary slicing option, DI registration and options validation.</summary>
public sealed class GuardTests
{
    [Fact]
    public void Compute_VocabularyMismatch_NamesBothShapesAndTheOption()
    {
        using var scope = NewDisposeScope();
        var y = TestData.Labels(71, 1, 2, 10);
        var ctx = TestData.Context(TestData.Logits(72, 1, 2, 10), TestData.Logits(73, 1, 2, 12), y);
        var ex = Assert.Throws<ArgumentException>(() => TestData.Create(ObjectiveNames.ForwardKl).Compute(ctx));
        Assert.Contains("V = 10", ex.Message, StringComparison.Ordinal);
        Assert.Contains("V = 12", ex.Message, StringComparison.Ordinal);
        Assert.Contains(nameof(LossesOptions.SliceToSharedVocabulary), ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Compute_SliceToSharedVocabulary_EqualsLossOnSharedColumns()
    {
        using var scope = NewDisposeScope();
        var y = TestData.Labels(74, 1, 3, 10);
        var s = TestData.Logits(75, 1, 3, 10);
        var t = TestData.Logits(76, 1, 3, 12);
        var sliced = TestData.Create(ObjectiveNames.ForwardKl, o => o.SliceToSharedVocabulary = true).Compute(TestData.Context(s, t, y));
        var manual = TestData.Create(ObjectiveNames.ForwardKl).Compute(TestData.Context(s, t.narrow(-1, 0, 10).contiguous(), y));
        GoldenTests.AssertClose(TestData.Value(manual.LossSum), TestData.Value(sliced.LossSum), 1e-7);
    }

    [Fact]
    public void Compute_TeacherLogitsRequireGrad_Throws()
    {
        using var scope = NewDisposeScope();
        var y = TestData.Labels(77, 1, 2, 5);
        var ctx = TestData.Context(TestData.Logits(78, 1, 2, 5), TestData.Logits(79, 1, 2, 5).requires_grad_(true), y);
        var ex = Assert.Throws<InvalidOperationException>(() => TestData.Create(ObjectiveNames.ReverseKl).Compute(ctx));
        Assert.Contains("require grad", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(float.NaN, "NaN")]
    [InlineData(float.PositiveInfinity, "+inf")]
    public void Compute_NonFiniteStudentLogit_ReportsPosition(float bad, string word)
    {
        using var scope = NewDisposeScope();
        var y = TestData.Labels(80, 2, 4, 6);
        var s = TestData.Logits(81, 2, 4, 6);
        s[1, 2, 3] = tensor(bad);
        var ex = Assert.Throws<ArgumentException>(() => TestData.Create(ObjectiveNames.ForwardKl, o => o.CheckFinite = true).Compute(TestData.Context(s, TestData.Logits(82, 2, 4, 6), y)));
        Assert.Contains(word, ex.Message, StringComparison.Ordinal);
        Assert.Contains("(batch 1, token 2, vocab 3)", ex.Message, StringComparison.Ordinal);
        Assert.Contains("student logits", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Compute_MissingTeacherOrLabelsMismatch_ThrowsClearly()
    {
        using var scope = NewDisposeScope();
        var s = TestData.Logits(83, 2, 4, 6);
        var noTeacher = Assert.Throws<InvalidOperationException>(() => TestData.Create(ObjectiveNames.Atkd).Compute(TestData.Context(s, null, TestData.Labels(84, 2, 4, 6))));
        Assert.Contains("teacher logits", noTeacher.Message, StringComparison.Ordinal);
        var shape = Assert.Throws<ArgumentException>(() => TestData.Create(ObjectiveNames.Sft).Compute(TestData.Context(s, null, TestData.Labels(85, 2, 5, 6))));
        Assert.Contains("labels [2, 5]", shape.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Factory_UnknownName_ListsKnownNames()
    {
        var services = new ServiceCollection();
        services.AddDistill().AddDistillLosses().AddDistillLosses(); // twice is harmless
        using var sp = services.BuildServiceProvider();
        var factory = sp.GetRequiredService<IObjectiveFactory>();
        var ex = Assert.Throws<ArgumentException>(() => factory.Create("forward-kl"));
        Assert.Contains("forward_kl", ex.Message, StringComparison.Ordinal);
        Assert.Equal(factory.Names.Count, factory.Names.Distinct().Count());
        foreach (var name in new[] { "forward_kl", "adaptive_kl", "atkd", "atkd_tvd", "gkd_jsd", "sft", "seqkd", "forward_kl_chunked", "atkd_dkd_chunked", "sft_chunked", "atkd_chunked", "sparse_forward_kl_chunked", "sparse_tvd_chunked" })
        {
            Assert.Contains(name, factory.Names);
            Assert.Equal(name, factory.Create(name).Name);
        }

        Assert.DoesNotContain("dskd_chunked", factory.Names);
        Assert.DoesNotContain("uld_chunked", factory.Names);
    }

    [Fact]
    public void AddDistillLosses_ConfigurationSection_BindsNestedOptions()
    {
        var config = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Losses:ChunkSize"] = "256",
            ["Losses:Divergence:Temperature"] = "1.5",
            ["Losses:Atkd:Setting"] = "Reverse",
            ["Losses:Atkd:OfficialCompatibility"] = "true",
            ["Losses:Gkd:Beta"] = "0.25",
        }).Build();
        var services = new ServiceCollection();
        services.AddDistill().AddDistillLosses(config.GetSection("Losses"));
        using var sp = services.BuildServiceProvider();
        var o = sp.GetRequiredService<IOptions<LossesOptions>>().Value;
        Assert.Equal(256, o.ChunkSize);
        Assert.Equal(1.5, o.Divergence.Temperature);
        Assert.Equal(AtkdSetting.Reverse, o.Atkd.Setting);
        Assert.True(o.Atkd.OfficialCompatibility);
        Assert.Equal(0.25, o.Gkd.Beta);
        Assert.Equal(0.5, o.Divergence.KdRate);
    }

    [Fact]
    public void AddDistillLosses_OutOfRangeOptions_FailValidationNamingTheMember()
    {
        var services = new ServiceCollection();
        services.AddDistill().AddDistillLosses(o =>
        {
            o.Divergence.KdRate = 1.5;
            o.ChunkSize = 0;
        });
        using var sp = services.BuildServiceProvider();
        var ex = Assert.Throws<OptionsValidationException>(() => sp.GetRequiredService<IOptions<LossesOptions>>().Value);
        Assert.Contains(ex.Failures, f => f.Contains("KdRate", StringComparison.Ordinal));
        Assert.Contains(ex.Failures, f => f.Contains("ChunkSize", StringComparison.Ordinal));
    }
}
