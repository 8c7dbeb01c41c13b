using Distill.Data;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace Distill;

/// <summary>Registers Distill.Data on an <see cref="IDistillBuilder"/>.</summary>
public static class DistillDataBuilderExtensions
{
    /// <summary>
    /// Adds <see cref="DataOptions"/> (validated at start-up). Hosts read them through <c>IOptions&lt;DataOptions&gt;</c> and
    /// build batches with <see cref="TokenizedDataset.Create(IEnumerable{TextExample}, HfTokenizer, HfTokenizer, DataOptions, Microsoft.Extensions.Logging.ILogger)"/> and <see cref="DistillationBatchSource.FromOptions"/>.
    /// Calling it twice is harmless; each call's <paramref name="configure"/> is applied.
    /// </summary>
    /// <param name="builder">The Distill builder.</param>
    /// <param name="configure">Optional configuration of the options.</param>
    /// <returns>The builder.</returns>
    public static IDistillBuilder AddDistillData(this IDistillBuilder builder, Action<DataOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var options = builder.Services.AddOptions<DataOptions>();
        if (configure is not null)
        {
            options.Configure(configure);
        }

        return AddCore(builder);
    }

    /// <summary>Adds <see cref="DataOptions"/> bound from a configuration section (e.g. <c>"Distill:Data"</c>).</summary>
    /// <param name="builder">The Distill builder.</param>
    /// <param name="section">The section with <c>MaxLength</c>, <c>MaxPromptLength</c>, <c>PaddingSide</c>, <c>BatchSize</c>, <c>Seed</c>, ...</param>
    /// <returns>The builder.</returns>
    public static IDistillBuilder AddDistillData(this IDistillBuilder builder, IConfiguration section)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(section);
        builder.Services.AddOptions<DataOptions>().Bind(section);
        return AddCore(builder);
    }

    /// <summary>
    /// Adds an offline top-k teacher cache as the run's teacher: <see cref="CachedTopKTeacher"/> (as itself and as
    /// <see cref="ITeacher"/>, unless another teacher is registered first), opened once on first use and checked against the
    /// manifest, with validated <see cref="TeacherCacheOptions"/>. Pair it with a sparse objective (<c>sparse_forward_kl</c>, …)
    /// or, for a cache of teacher tokens, <c>uld</c>; the trainer gets the teacher from DI like any other.
    /// </summary>
    /// <param name="builder">The Distill builder.</param>
    /// <param name="configure">Sets the folder and what the cache must match.</param>
    /// <returns>The builder.</returns>
    public static IDistillBuilder AddDistillTeacherCache(this IDistillBuilder builder, Action<TeacherCacheOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(configure);
        builder.Services.AddOptions<TeacherCacheOptions>().Configure(configure);
        return AddCacheCore(builder);
    }

    /// <summary>As <see cref="AddDistillTeacherCache(IDistillBuilder, Action{TeacherCacheOptions})"/>, bound from a configuration section (e.g. <c>"TeacherCache"</c>).</summary>
    /// <param name="builder">The Distill builder.</param>
    /// <param name="section">The section (<c>Directory</c>, <c>K</c>, <c>Template</c>, <c>TokenizerHash</c>, <c>Tokens</c>, ...).</param>
    /// <returns>The builder.</returns>
    public static IDistillBuilder AddDistillTeacherCache(this IDistillBuilder builder, IConfiguration section)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(section);
        builder.Services.AddOptions<TeacherCacheOptions>().Bind(section);
        return AddCacheCore(builder);
    }

    private static IDistillBuilder AddCacheCore(IDistillBuilder builder)
    {
        var services = builder.Services;
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<TeacherCacheOptions>, TeacherCacheOptionsValidator>());
        services.AddOptions<TeacherCacheOptions>().ValidateOnStart();
        services.TryAddSingleton(sp =>
        {
            var o = sp.GetRequiredService<IOptions<TeacherCacheOptions>>().Value;
            var logger = sp.GetService<Microsoft.Extensions.Logging.ILoggerFactory>()?.CreateLogger("Distill.Data.TeacherCache");
            return new CachedTopKTeacher(TeacherCacheReader.Open(o.Directory, o.ToExpectation(), o.VerifyChecksums, logger));
        });
        services.TryAddSingleton<ITeacher>(sp => sp.GetRequiredService<CachedTopKTeacher>());
        return builder;
    }

    private static IDistillBuilder AddCore(IDistillBuilder builder)
    {
        builder.Services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<DataOptions>, DataOptionsValidator>());
        builder.Services.AddOptions<DataOptions>().ValidateOnStart();
        return builder;
    }
}
