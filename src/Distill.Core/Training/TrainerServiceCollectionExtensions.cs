using Distill.Training;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Distill;

/// <summary>Registers the distillation trainer.</summary>
public static class TrainerServiceCollectionExtensions
{
    /// <summary>
    /// Adds <see cref="TrainingOptions"/> (validated at start) and <see cref="IDistillationTrainerFactory"/>, which creates
    /// <see cref="DistillationTrainer"/>s with those options and the host's logging. Calling it twice is harmless.
    /// </summary>
    /// <param name="builder">The builder returned by <c>services.AddDistill(...)</c>.</param>
    /// <param name="configure">Optional configuration of <see cref="TrainingOptions"/>.</param>
    /// <returns>The same builder.</returns>
    public static IDistillBuilder AddDistillTrainer(this IDistillBuilder builder, Action<TrainingOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var options = builder.Services.AddOptions<TrainingOptions>();
        if (configure is not null)
        {
            options.Configure(configure);
        }

        return AddCore(builder, options);
    }

    /// <summary>Adds the trainer with <see cref="TrainingOptions"/> bound from a configuration section (e.g. <c>"Distill:Training"</c>).</summary>
    /// <param name="builder">The builder returned by <c>services.AddDistill(...)</c>.</param>
    /// <param name="section">The section; keys are the property names (<c>LearningRate</c>, <c>Schedule</c>: <c>Cosine</c>, ...).</param>
    /// <returns>The same builder.</returns>
    /// <remarks>As with any options binding, a list in configuration (<c>NoDecayNameFragments</c>) is appended to the defaults.</remarks>
    public static IDistillBuilder AddDistillTrainer(this IDistillBuilder builder, IConfiguration section)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(section);
        return AddCore(builder, builder.Services.AddOptions<TrainingOptions>().Bind(section));
    }

    private static IDistillBuilder AddCore(IDistillBuilder builder, OptionsBuilder<TrainingOptions> options)
    {
        options.ValidateOnStart();
        builder.Services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<TrainingOptions>, TrainingOptionsValidator>());
        builder.Services.TryAddSingleton<IDistillationTrainerFactory, DistillationTrainerFactory>();
        return builder;
    }
}

/// <summary>Creates <see cref="DistillationTrainer"/>s configured from DI (<see cref="TrainingOptions"/>, logging).</summary>
public interface IDistillationTrainerFactory
{
    /// <summary>Creates a trainer with the registered <see cref="TrainingOptions"/>, optionally adjusted by <paramref name="configure"/>.</summary>
    /// <param name="student">The student model.</param>
    /// <param name="objective">The objective.</param>
    /// <param name="teacher">The teacher, or <see langword="null"/> for teacher-free objectives.</param>
    /// <param name="configure">Per-run changes applied to a copy of the registered options.</param>
    /// <param name="checkpointWriter">How student weights are checkpointed (default: <see cref="StateDictCheckpointWriter"/>).</param>
    /// <returns>A validated trainer.</returns>
    DistillationTrainer Create(ICausalLM student, IDistillationObjective objective, ITeacher? teacher, Action<TrainingOptions>? configure = null, IModelCheckpointWriter? checkpointWriter = null);
}

internal sealed class DistillationTrainerFactory(IOptions<TrainingOptions> options, ILoggerFactory? loggerFactory = null) : IDistillationTrainerFactory
{
    public DistillationTrainer Create(ICausalLM student, IDistillationObjective objective, ITeacher? teacher, Action<TrainingOptions>? configure = null, IModelCheckpointWriter? checkpointWriter = null)
    {
        var o = options.Value.Clone();
        configure?.Invoke(o);
        return new DistillationTrainer(student, objective, teacher, o, (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger<DistillationTrainer>(), checkpointWriter);
    }
}

/// <summary>Validates <see cref="TrainingOptions"/> (source-generated; the rules are those of <see cref="TrainingOptions.Validate()"/>, reached through <see cref="System.ComponentModel.DataAnnotations.IValidatableObject"/>).</summary>
[OptionsValidator]
internal sealed partial class TrainingOptionsValidator : IValidateOptions<TrainingOptions>
{
}
