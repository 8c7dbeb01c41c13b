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
}
