using Distill.Data;
using Distill.Losses.CrossTokenizer;
using Distill.Losses.DualSpace;
using Distill.Tests.Shared;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Distill.Losses.Tests.CrossTokenizer;

/// <summary>Selection by name through DI: the factory serves the dual-space and cross-tokenizer objectives with their options.</summary>
public sealed class CrossTokenizerRegistrationTests
{
    [Theory]
    [InlineData("dskd", typeof(DskdObjective))]
    [InlineData("dskd_cma", typeof(DskdCmaObjective))]
    [InlineData("uld", typeof(UldObjective))]
    [InlineData("uld_dskd", typeof(UldDskdObjective))]
    [InlineData("dual_space_kd", typeof(DskdObjective))]
    [InlineData("dual_space_kd_with_cma", typeof(DskdCmaObjective))]
    [InlineData("universal_logit_distillation", typeof(UldDskdObjective))]
    public void Create_RegisteredName_ReturnsTheObjective(string name, Type expected)
    {
        using var provider = new ServiceCollection().AddDistill().AddDistillLosses().Services.BuildServiceProvider();
        var factory = provider.GetRequiredService<IObjectiveFactory>();

        var objective = factory.Create(name);

        Assert.IsType(expected, objective);
        Assert.Contains(name, factory.Names);
    }

    [Fact]
    public void AddDistillCrossTokenizer_ConfigurationSection_BindsEverySubSection()
    {
        var config = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["CrossTokenizer:Dskd:Distance"] = "reverse_kl",
            ["CrossTokenizer:DskdCma:TeacherTemperature"] = "1.5",
            ["CrossTokenizer:Uld:Lambda"] = "1",
            ["CrossTokenizer:Uld:SkipStudentEos"] = "false",
            ["CrossTokenizer:UldDskd:Alpha"] = "0.3",
            ["CrossTokenizer:MinEd:Temperature"] = "1",
        }).Build();
        using var provider = new ServiceCollection().AddDistill().AddDistillCrossTokenizer(config.GetSection("CrossTokenizer")).Services.BuildServiceProvider();

        var o = provider.GetRequiredService<IOptions<CrossTokenizerOptions>>().Value;

        Assert.Equal("reverse_kl", o.Dskd.Distance);
        Assert.Equal(1.5, o.DskdCma.TeacherTemperature);
        Assert.Equal(1.0, o.Uld.Lambda);
        Assert.False(o.Uld.SkipStudentEos);
        Assert.Equal(0.3, o.UldDskd.Alpha);
        Assert.Equal(1.0, o.MinEd.Temperature);
    }

    [Fact]
    public void AddDistillCrossTokenizer_InvalidOptions_FailValidationNamingTheProperty()
    {
        using var provider = new ServiceCollection().AddDistill().AddDistillCrossTokenizer(o => o.Uld.Lambda = -1).Services.BuildServiceProvider();

        var ex = Assert.Throws<OptionsValidationException>(() => provider.GetRequiredService<IOptions<CrossTokenizerOptions>>().Value);
        Assert.Contains("CrossTokenizer.Uld.Lambda", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Create_MinEdWithoutTokenizerPaths_ThrowsNamingTheOptions()
    {
        using var provider = new ServiceCollection().AddDistill().AddDistillCrossTokenizer().Services.BuildServiceProvider();

        var ex = Assert.Throws<InvalidOperationException>(() => provider.GetRequiredService<IObjectiveFactory>().Create("min_ed"));
        Assert.Contains("StudentTokenizerPath", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Create_MinEdWithTokenizerFolders_BuildsTheVocabularyMap()
    {
        using var folder = TestRuntime.CreateTempFolder();
        var studentDir = BundledData.WriteTokenizer(BundledTokenizer.Bytes, Path.Combine(folder.Path, "student"));
        var teacherDir = BundledData.WriteTokenizer(BundledTokenizer.Bpe, Path.Combine(folder.Path, "teacher"));
        using var provider = new ServiceCollection().AddDistill()
            .AddDistillCrossTokenizer(o =>
            {
                o.MinEd.StudentTokenizerPath = studentDir;
                o.MinEd.TeacherTokenizerPath = teacherDir;
            }).Services.BuildServiceProvider();

        var objective = provider.GetRequiredService<IObjectiveFactory>().Create("min_edit_dis_kld");

        Assert.Equal("min_ed", objective.Name);
        Assert.False(objective.Requirements.RequiresSameVocabulary);
        Assert.True(objective.Requirements.RequiresTeacherTokens);
    }
}
