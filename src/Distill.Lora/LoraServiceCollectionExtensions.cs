using Distill.Lora;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using static TorchSharp.torch;

namespace Distill;

/// <summary>Registers Distill.Lora on an <see cref="IDistillBuilder"/>.</summary>
public static class LoraServiceCollectionExtensions
{
    /// <summary>
    /// Adds <see cref="LoraConfig"/> (validated at start-up) and <see cref="ILoraInjector"/>. Calling it twice is harmless;
    /// each call's <paramref name="configure"/> is applied.
    /// </summary>
    /// <param name="builder">The builder returned by <c>services.AddDistill(...)</c>.</param>
    /// <param name="configure">Optional configuration of the default <see cref="LoraConfig"/>.</param>
    /// <returns>The builder, for chaining.</returns>
    public static IDistillBuilder AddDistillLora(this IDistillBuilder builder, Action<LoraConfig>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var options = builder.Services.AddOptions<LoraConfig>();
        if (configure is not null)
        {
            options.Configure(configure);
        }

        return AddCore(builder, options);
    }

    /// <summary>
    /// Adds Distill.Lora with the default <see cref="LoraConfig"/> bound from a configuration section (e.g. <c>"Distill:Lora"</c>
    /// with <c>R</c>, <c>LoraAlpha</c>, <c>TargetModules</c>, <c>Bias</c> = <c>LoraOnly</c>, ...: property names, not PEFT's JSON keys).
    /// </summary>
    /// <param name="builder">The builder returned by <c>services.AddDistill(...)</c>.</param>
    /// <param name="section">The configuration section.</param>
    /// <returns>The builder, for chaining.</returns>
    public static IDistillBuilder AddDistillLora(this IDistillBuilder builder, IConfiguration section)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(section);
        return AddCore(builder, builder.Services.AddOptions<LoraConfig>().Bind(section));
    }

    private static IDistillBuilder AddCore(IDistillBuilder builder, OptionsBuilder<LoraConfig> options)
    {
        options.ValidateOnStart();
        builder.Services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<LoraConfig>, LoraConfigValidator>());
        builder.Services.TryAddSingleton<ILoraInjector, LoraInjector>();
        return builder;
    }
}

/// <summary>Applies the configured LoRA (<c>IOptions&lt;LoraConfig&gt;</c>) to models, and loads PEFT adapters onto them.</summary>
/// <remarks>Stateless and thread-safe; the models it changes are not.</remarks>
public interface ILoraInjector
{
    /// <summary>Injects new adapters per the configured <see cref="LoraConfig"/> (see <see cref="LoraModel.Inject(ICausalLM, LoraConfig, ILogger?)"/>).</summary>
    /// <param name="model">The student.</param>
    /// <returns>The adapters.</returns>
    LoraModel Inject(ICausalLM model);

    /// <summary>Loads a PEFT adapter folder onto a model (see <see cref="LoraModel.LoadAdapter(nn.Module, string, bool, ILogger?)"/>).</summary>
    /// <param name="model">The base model.</param>
    /// <param name="adapterDirectory">The folder with <c>adapter_config.json</c> and <c>adapter_model.safetensors</c>.</param>
    /// <param name="trainable">False (a frozen teacher) or true (resume training).</param>
    /// <returns>The adapters.</returns>
    LoraModel LoadAdapter(ICausalLM model, string adapterDirectory, bool trainable = false);
}

/// <summary>Default <see cref="ILoraInjector"/>.</summary>
internal sealed class LoraInjector(IOptions<LoraConfig> options, ILoggerFactory? loggerFactory = null) : ILoraInjector
{
    private readonly ILogger logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger<LoraInjector>();

    public LoraModel Inject(ICausalLM model) => LoraModel.Inject(model, options.Value, logger);

    public LoraModel LoadAdapter(ICausalLM model, string adapterDirectory, bool trainable = false) =>
        LoraModel.LoadAdapter(model, adapterDirectory, trainable, logger);
}
