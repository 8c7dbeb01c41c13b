using Distill.Core.Tests.Models;
using Distill.Tests.Shared;
using Distill.Training;
using Distill.Training.Sources;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using static TorchSharp.torch;

namespace Distill.Core.Tests.Training.Sources;

/// <summary>On-policy training through the trainer: λ = 0 is off-policy training, and a resumed run is bit-identical.</summary>
[Collection("Sequential")]
public class OnPolicyTrainingTests
{
    private static Dictionary<string, Tensor> Weights(nn.Module m) => m.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone().DetachFromDisposeScope());

    private static bool Same(Dictionary<string, Tensor> a, Dictionary<string, Tensor> b) => a.All(kv => kv.Value.eq(b[kv.Key]).all().item<bool>());

    /// <summary>Trains a tiny GPT-2 student (dropout 0.1) against a tiny GPT-2 teacher for 6 steps, optionally cancelled after <paramref name="stopAfter"/>.</summary>
    private static (ICausalLM Student, ISampleSource? Source) Run(string dir, Func<ICausalLM, ITeacher, ISampleSource?> source, bool prefetch = true, int stopAfter = 6, string? resume = null)
    {
        var student = TinyModels.Create("gpt2", seed: 7);
        var teacher = new LocalModelTeacher(TinyModels.Create("gpt2", seed: 9));
        var trainer = new DistillationTrainer(student, new SumForwardKlObjective(), teacher, new TrainingOptions
        {
            OutputDirectory = dir,
            LearningRate = 5e-3,
            MaxSteps = 6,
            GradientAccumulationSteps = 2,
            LogEverySteps = 1,
            TensorBoard = false,
            Seed = 5,
            PrefetchBatches = prefetch,
            SaveEverySteps = 3,
        });
        var s = source(student, teacher);
        if (s is not null)
        {
            trainer.BatchTransforms.Add(s);
        }

        using var cts = new CancellationTokenSource();
        trainer.Progress = new SyncProgress<TrainingProgress>(p =>
        {
            if (p.Step == stopAfter)
            {
                cts.Cancel();
            }
        });
        trainer.Train(new SyntheticBatchSource(examples: 12, batchSize: 2, vocab: 61, seed: 3), resume, cts.Token);
        return (student, s);
    }

    [Fact]
    public void Lambda0_EqualsOffPolicyTraining_BitForBit()
    {
        using var scope = NewDisposeScope();
        using var a = new TempFolder();
        using var b = new TempFolder();
        var offPolicy = Weights(Run(a.Path, (_, _) => null).Student.Module);
        var (student, source) = Run(b.Path, (s, _) =>
        {
            var o = SampleSourceOptions.Gkd(lambda: 0);
            o.MaxNewTokens = 8; // the tiny model's context window is 64
            return SampleSources.OnPolicy(s, o);
        });
        Assert.True(Same(offPolicy, Weights(student.Module)));
        Assert.Equal((12L, 0L), (source!.Statistics.Batches, source.Statistics.GeneratedBatches));
    }

    [Fact]
    public void OnPolicy_ResumedFromACheckpoint_OrWithPrefetchOff_GivesBitIdenticalWeights()
    {
        using var scope = NewDisposeScope();
        using var a = new TempFolder();
        using var b = new TempFolder();
        using var c = new TempFolder();
        using var d = new TempFolder();
        static ISampleSource Gkd(ICausalLM s, ITeacher t) => SampleSources.OnPolicy(s, new SampleSourceOptions { StudentRequestRatio = 0.5, DoSample = true, Temperature = 1.0, MaxNewTokens = 6 });

        var (straightStudent, straightSource) = Run(a.Path, Gkd);
        var straight = Weights(straightStudent.Module);
        Assert.InRange(straightSource!.Statistics.GeneratedBatches, 1, 11); // the coin went both ways
        Assert.True(Same(straight, Weights(Run(b.Path, Gkd, prefetch: false).Student.Module)));

        Run(c.Path, Gkd, stopAfter: 3);
        Assert.True(Same(straight, Weights(Run(c.Path, Gkd, resume: "latest").Student.Module)));

        // It matters: the same run off-policy ends elsewhere.
        Assert.False(Same(straight, Weights(Run(d.Path, (_, _) => null).Student.Module)));
    }

    [Fact]
    public void MixToken_ResumedFromACheckpoint_GivesBitIdenticalWeights()
    {
        using var scope = NewDisposeScope();
        using var a = new TempFolder();
        using var b = new TempFolder();
        static ISampleSource MixToken(ICausalLM s, ITeacher t) => SampleSources.Create(AtkdSampleSource.MixToken, s, t, new SampleSourceOptions { MaxNewTokens = 5 });

        var (straightStudent, source) = Run(a.Path, MixToken);
        var straight = Weights(straightStudent.Module);
        Assert.Equal(12, source!.Statistics.GeneratedBatches); // every micro-batch is mixed
        Run(b.Path, MixToken, stopAfter: 3);
        Assert.True(Same(straight, Weights(Run(b.Path, MixToken, resume: "latest").Student.Module)));
    }

    [Fact]
    public void AtkdPreset_HasTheOfficialScriptDefaults()
    {
        var o = TrainingPresets.Atkd("runs/atkd");
        Assert.Equal((2e-5, LearningRateScheduleKind.Cosine, 0.03, 3, 2, 0.0), (o.LearningRate, o.Schedule, o.WarmupRatio, o.Epochs, o.GradientAccumulationSteps, o.WeightDecay));
        Assert.Equal((0.9, 0.999, 1e-8, (double?)1.0), (o.Beta1, o.Beta2, o.Epsilon, o.MaxGradNorm));
        Assert.Equal("runs/atkd", o.OutputDirectory);
        Assert.Equal(512, TrainingPresets.AtkdMaxLength);
        Assert.Empty(o.Validate());
    }

    [Fact]
    public void Di_RegistersValidatedOptionsAndAFactory()
    {
        using var scope = NewDisposeScope();
        var services = new ServiceCollection();
        services.AddDistill().AddDistillSampleSources(o => o.StudentRequestRatio = 0.25).AddDistillSampleSources();
        using var provider = services.BuildServiceProvider();
        var source = provider.GetRequiredService<ISampleSourceFactory>().Create(AtkdSampleSource.MixRequestGt, TinyModels.Create("gpt2"), configure: o => o.MaxNewTokens = 4);
        Assert.Equal(0.25, Assert.IsType<OnPolicySource>(source).StudentRequestRatio);

        var bad = new ServiceCollection();
        bad.AddDistill().AddDistillSampleSources(o => o.StudentRequestRatio = 1.5);
        using var badProvider = bad.BuildServiceProvider();
        var e = Assert.Throws<OptionsValidationException>(() => badProvider.GetRequiredService<IOptions<SampleSourceOptions>>().Value);
        Assert.Contains("StudentRequestRatio", e.Message);
    }
}
