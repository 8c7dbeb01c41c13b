using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Distill.Lora.Tests;

public sealed class LoraServiceCollectionTests
{
    [Fact]
    public void AddDistillLora_Configure_BindsOptionsAndInjector()
    {
        using var provider = new ServiceCollection()
            .AddDistill()
            .AddDistillLora(c =>
            {
                c.R = 16;
                c.LoraAlpha = 32;
                c.TargetModules = ["q_proj", "v_proj"];
            })
            .AddDistillLora() // a second call is harmless
            .Services.BuildServiceProvider();

        var config = provider.GetRequiredService<IOptions<LoraConfig>>().Value;
        Assert.Equal(16, config.R);
        Assert.Equal(2.0, config.ScalingFor(config.R, config.LoraAlpha));
        Assert.Same(provider.GetRequiredService<ILoraInjector>(), provider.GetRequiredService<ILoraInjector>());
        Assert.Single(provider.GetServices<IValidateOptions<LoraConfig>>());
    }

    [Fact]
    public void AddDistillLora_InvalidConfig_FailsValidation()
    {
        using var provider = new ServiceCollection().AddDistill().AddDistillLora(c => c.R = 0).Services.BuildServiceProvider();

        var e = Assert.Throws<OptionsValidationException>(() => provider.GetRequiredService<IOptions<LoraConfig>>().Value);

        Assert.Contains("r) must be positive", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AddDistillLora_ConfigurationSection_BindsListsEnumsAndPatterns()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Distill:Lora:R"] = "256",
            ["Distill:Lora:LoraAlpha"] = "8",
            ["Distill:Lora:LoraDropout"] = "0.1",
            ["Distill:Lora:TargetModules:0"] = "q_proj",
            ["Distill:Lora:TargetModules:1"] = "v_proj",
            ["Distill:Lora:Bias"] = "LoraOnly",
            ["Distill:Lora:RankPattern:down_proj"] = "16",
        }).Build();
        using var provider = new ServiceCollection().AddDistill().AddDistillLora(configuration.GetSection("Distill:Lora")).Services.BuildServiceProvider();

        var c = provider.GetRequiredService<IOptions<LoraConfig>>().Value;

        // DSKD's TinyLlama student: r 256, alpha 8 → scaling 1/32.
        Assert.Equal(256, c.R);
        Assert.Equal(1.0 / 32, c.ScalingFor(c.R, c.LoraAlpha));
        Assert.Equal(["q_proj", "v_proj"], c.TargetModules);
        Assert.Equal(LoraBiasMode.LoraOnly, c.Bias);
        Assert.Equal(16, c.RankPattern["down_proj"]);
    }
}
