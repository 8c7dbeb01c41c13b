using Distill.Data;
using Distill.Models;
using Distill.Training;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using static TorchSharp.torch;

namespace Distill.Quickstart;

/// <summary>The quickstart's service provider (runtime, objectives, trainer defaults) and its model shapes.</summary>
internal static class QuickstartServices
{
    /// <summary>Builds the services every quickstart phase uses.</summary>
    /// <param name="settings">The settings (seed, threads, KD α/T, precision).</param>
    /// <param name="loggers">The logger factory.</param>
    /// <param name="bundledModels">Whether the models are the tiny bundled ones (one torch thread unless <c>--threads</c> says otherwise).</param>
    /// <returns>The provider.</returns>
    public static ServiceProvider Build(QuickstartSettings settings, ILoggerFactory loggers, bool bundledModels)
    {
        var services = new ServiceCollection();
        services.AddSingleton(loggers);
        services.AddSingleton(typeof(ILogger<>), typeof(Logger<>));
        services.AddDistill(o =>
        {
            o.Seed = settings.Seed;
            o.DType = "float32";
            // The bundled models are tiny: one thread avoids OpenMP synchronisation that costs more than it saves (measured 5x
            // less CPU time per step on a busy 2-core machine). Real models get torch's default unless --threads says otherwise.
            o.Threads = settings.Threads ?? (bundledModels ? 1 : null);
        })
            .AddDistillLosses(o =>
            {
                o.Divergence.KdRate = settings.KdRate;
                o.Divergence.Temperature = settings.KdTemperature;
            })
            .AddDistillTrainer(o =>
            {
                o.LogEverySteps = 10;
                o.Seed = settings.Seed;
                o.Precision = settings.BFloat16 ? TrainingPrecision.BFloat16 : TrainingPrecision.Float32;
                o.WarmupRatio = 0.05;
                o.Schedule = LearningRateScheduleKind.Cosine;
                o.MinLearningRate = 1e-5;
                o.MaxGradNorm = 1.0;
            });
        return services.BuildServiceProvider();
    }

    /// <summary>The GPT-2 shape of a bundled model (teacher or student) for <paramref name="tokenizer"/>.</summary>
    /// <param name="tokenizer">The tokenizer (vocabulary size, EOS/pad id).</param>
    /// <param name="layers">Depth.</param>
    /// <param name="hidden">Width (heads of 32 dimensions).</param>
    /// <param name="maxLength">Context length.</param>
    /// <returns>The config.</returns>
    public static Gpt2Config BundledConfig(HfTokenizer tokenizer, int layers, int hidden, int maxLength) => Distill.Samples.SampleModels.TinyGpt2(tokenizer, layers, hidden, maxLength);

    /// <summary>The student of one seed: <c>--student</c>'s folder, or a random bundled GPT-2 initialised from the seed.</summary>
    /// <param name="settings">The settings.</param>
    /// <param name="tokenizer">The tokenizer.</param>
    /// <param name="seed">The run's seed.</param>
    /// <param name="device">The device.</param>
    /// <returns>The student.</returns>
    public static CausalLM CreateStudent(QuickstartSettings settings, HfTokenizer tokenizer, int seed, Device device) => settings.StudentPath is not null
        ? AutoCausalLM.FromPretrained(settings.StudentPath, device: device)
        : AutoCausalLM.FromConfig(BundledConfig(tokenizer, settings.StudentLayers, settings.StudentHidden, settings.MaxLength), seed, device: device);
}
