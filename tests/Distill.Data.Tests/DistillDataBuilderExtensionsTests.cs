using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Distill.Data.Tests;

public sealed class DistillDataBuilderExtensionsTests
{
    [Fact]
    public void AddDistillData_Configure_BindsOptionsWithDefaults()
    {
        var services = new ServiceCollection();
        services.AddDistill().AddDistillData(o => o.PaddingSide = PaddingSide.Left).AddDistillData(o => o.BatchSize = 4);
        using var provider = services.BuildServiceProvider();
        var options = provider.GetRequiredService<IOptions<DataOptions>>().Value;
        Assert.Equal(PaddingSide.Left, options.PaddingSide);
        Assert.Equal(4, options.BatchSize);
        Assert.Equal(512, options.MaxLength);
        Assert.Equal(256, options.MaxPromptLength);
        Assert.Equal("dolly", options.Template);
    }

    [Fact]
    public void AddDistillData_InvalidOptions_FailValidation()
    {
        var services = new ServiceCollection();
        services.AddDistill().AddDistillData(o =>
        {
            o.MaxLength = 100;
            o.MaxPromptLength = 100;
            o.BatchSize = 0;
            o.Template = "nope";
        });
        using var provider = services.BuildServiceProvider();
        var ex = Assert.Throws<OptionsValidationException>(() => provider.GetRequiredService<IOptions<DataOptions>>().Value);
        Assert.Equal(3, ex.Failures.Count());
        Assert.Contains(ex.Failures, f => f.Contains("MaxPromptLength (100) must be smaller than MaxLength (100)", StringComparison.Ordinal));
    }

    [Fact]
    public void AddDistillData_AnnotatedRules_NameTheOption()
    {
        var services = new ServiceCollection();
        services.AddDistill().AddDistillData(o => (o.MaxLength, o.MaxPromptLength, o.PaddingSide) = (1, 0, (PaddingSide)7));
        using var provider = services.BuildServiceProvider();
        var ex = Assert.Throws<OptionsValidationException>(() => provider.GetRequiredService<IOptions<DataOptions>>().Value);
        Assert.Equal(3, ex.Failures.Count());
        foreach (var option in new[] { "DataOptions.MaxLength", "DataOptions.MaxPromptLength", "DataOptions.PaddingSide" })
        {
            Assert.Contains(ex.Failures, f => f.Contains(option, StringComparison.Ordinal));
        }
    }

    [Fact]
    public void FromOptions_PadToMaxLength_GivesFixedWidthBatches()
    {
        var options = new DataOptions { MaxLength = 64, MaxPromptLength = 32, BatchSize = 4, PadToMaxLength = true };
        var examples = BundledData.Load(BundledSplit.Dev).Select(InstructionTemplate.Compact.Apply);
        var dataset = TokenizedDataset.Create(examples, BundledData.TokenizerB(), null, options);
        var source = DistillationBatchSource.FromOptions(dataset, options);
        Assert.Equal(50, source.BatchesPerEpoch);
        using var batch = source.GetBatch(epoch: 1, index: 3);
        Assert.Equal(new long[] { 4, 63 }, batch.InputIds.shape);
    }
}
