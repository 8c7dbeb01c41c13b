using Distill.Core.Tests.Models;
using Distill.Models;
using Distill.Tests.Shared;
using Distill.Training;
using static TorchSharp.torch;

namespace Distill.Core.Tests.Training;

[Collection("Sequential")]
public class HfCheckpointTests
{
    [Fact]
    public void Train_Gpt2WithHfCheckpoints_ResumesExactlyAndWritesLoadableHfFolder()
    {
        using var scope = NewDisposeScope();
        using var tmpA = new TempFolder();
        using var tmpB = new TempFolder();
        var config = TinyModels.Gpt2(); // dropout 0.1 everywhere: the RNG state matters for the resume
        var data = new SyntheticBatchSource(examples: 4, batchSize: 2, vocab: config.VocabSize, seed: 4);
        TrainingOptions Opts(string dir) => new()
        {
            OutputDirectory = dir,
            LearningRate = 1e-3,
            Epochs = 2, // 2 batches per epoch → 4 steps, crossing an epoch boundary
            LogEverySteps = 1,
            TensorBoard = false,
        };
        DistillationTrainer Make(CausalLM student, string dir, List<double> losses, Action<TrainingProgress>? extra = null) =>
            new(student, new SumForwardKlObjective(), new LocalModelTeacher(AutoCausalLM.FromConfig(config, seed: 50)), Opts(dir), checkpointWriter: new HfCheckpointWriter())
            {
                Progress = new SyncProgress<TrainingProgress>(p =>
                {
                    losses.Add(p.Loss);
                    extra?.Invoke(p);
                }),
            };

        var lossesA = new List<double>();
        var studentA = AutoCausalLM.FromConfig(config, seed: 1);
        Make(studentA, tmpA.Path, lossesA).Train(data);

        var lossesB = new List<double>();
        using var cts = new CancellationTokenSource();
        var interrupted = Make(AutoCausalLM.FromConfig(config, seed: 1), tmpB.Path, lossesB, p =>
        {
            if (p.Step == 1)
            {
                cts.Cancel();
            }
        }).Train(data, cancellationToken: cts.Token);
        Assert.Equal(1, interrupted.Steps);

        // The checkpoint's student folder is a plain HF model folder.
        var hfDir = Path.Combine(interrupted.LastCheckpoint!, CheckpointStore.StudentFolder);
        Assert.True(File.Exists(Path.Combine(hfDir, "config.json")));
        Assert.True(File.Exists(Path.Combine(hfDir, "model.safetensors")));
        using (var reloaded = AutoCausalLM.FromPretrained(hfDir))
        {
            Assert.Equal(config.VocabSize, reloaded.Config.VocabSize);
        }

        var studentC = AutoCausalLM.FromConfig(config, seed: 77);
        var resumed = Make(studentC, tmpB.Path, lossesB).Train(data, interrupted.LastCheckpoint);
        Assert.Equal(4, resumed.Steps);
        Assert.Equal(lossesA, lossesB);
        var a = studentA.state_dict();
        foreach (var (name, t) in studentC.state_dict())
        {
            Assert.True(t.eq(a[name]).all().item<bool>(), $"{name} differs after resume");
        }
    }

    [Fact]
    public void Save_NotACausalLM_ThrowsNamingTheType()
    {
        using var scope = NewDisposeScope();
        using var tmp = new TempFolder();
        var e = Assert.Throws<ArgumentException>(() => new HfCheckpointWriter().Save(new TinyCausalLM(5, 4, seed: 1), tmp.Path));
        Assert.Contains(nameof(TinyCausalLM), e.Message);
    }
}
