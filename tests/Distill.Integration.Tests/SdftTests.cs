using Distill.Data;
using Distill.Data.Synthesis;
using Distill.Lora;
using Distill.Models;
using Distill.Sdft;
using Distill.Tests.Shared;
using Microsoft.Extensions.DependencyInjection;

namespace Distill.Integration.Tests;

[Collection("Sequential")]
public class SdftTests
{
    /// <summary>
    /// The SDFT sample, shortened, on the bundled data: a tiny seed model, two seeds, a few task rows. Checks the pipeline's
    /// artefacts and bookkeeping (every row written once, reasons counted, SDFT trains on the final responses), and that a
    /// second run reuses the cached seed model and the distilled files.
    /// </summary>
    [Fact]
    public void Run_ShortenedSample_WritesDistilledDataAndTable()
    {
        using var tmp = new TempFolder();
        var settings = new SdftSettings
        {
            OutputDirectory = tmp.Path,
            SeedHidden = 32,
            SeedLayers = 1,
            SeedSteps = 60,
            Seeds = [1, 2],
            TrainExamples = 16,
            EvalExamples = 8,
            Epochs = 1,
            MaxNewTokens = 12,
            GenerationBatchSize = 8,
        };
        var phases = new HashSet<string>();
        var report = new SdftPipeline(settings) { OnProgress = p => phases.Add(p.Phase) }.Run();

        Assert.False(report.SeedFromCache);
        Assert.Equal([SdftPipeline.SeedRow, SdftPipeline.SftRow, SdftPipeline.SdftRowName], report.Rows.Select(r => r.Model));
        Assert.All(report.Rows, r =>
        {
            Assert.Equal(2, r.Task.Count);
            Assert.Equal(2, r.General.Count);
            Assert.All(r.Task.Concat(r.General), v => Assert.InRange(v, 0, 100));
        });
        Assert.Equal(8, report.TaskTestCount);
        Assert.Equal(2, report.Statistics.Count);
        Assert.All(report.Statistics, s => Assert.Equal(16, s.Total));
        foreach (var file in report.DistilledFiles)
        {
            Assert.Equal(16, File.ReadAllLines(file).Length);
        }

        Assert.Contains(phases, p => p.Contains("SDFT rewrites", StringComparison.Ordinal));
        Assert.Contains(phases, p => p.Contains("SFT (LoRA)", StringComparison.Ordinal));

        var again = new SdftPipeline(settings).Run();
        Assert.True(again.SeedFromCache);
        Assert.Equal(report.Statistics.Select(s => s.Counts), again.Statistics.Select(s => s.Counts));
        Assert.Equal(report[SdftPipeline.SeedRow].Task, again[SdftPipeline.SeedRow].Task);
    }

    /// <summary>The LoRA SFT step of SDFT (preset hyper-parameters, plain CE through the trainer) changes only the adapter.</summary>
    [Fact]
    public void LoraSft_TrainsOnlyTheAdapter()
    {
        using var tmp = new TempFolder();
        var services = new ServiceCollection();
        services.AddDistill(o => o.Threads = 1).AddDistillLosses().AddDistillTrainer();
        using var provider = services.BuildServiceProvider();
        var tokenizer = BundledData.TokenizerA();
        var eos = (long)tokenizer.EosTokenId!.Value;
        using var model = AutoCausalLM.FromConfig(new Gpt2Config
        {
            ModelType = "gpt2",
            VocabSize = tokenizer.VocabSize,
            HiddenSize = 32,
            NumHiddenLayers = 1,
            NumAttentionHeads = 2,
            MaxPositionEmbeddings = 64,
            EosTokenIds = [eos],
            BosTokenId = eos,
        }, seed: 5);
        var before = model.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().clone());
        var lora = LoraModel.Inject(model, new LoraConfig { R = SdftPreset.LoraRank, LoraAlpha = SdftPreset.LoraAlpha, LoraDropout = SdftPreset.LoraDropout(SdftBranch.Reproduce), TargetModules = ["c_attn"] });
        var template = SdftTemplate.Compact;
        var examples = BundledData.Load(BundledSplit.Dev).Take(16)
            .Select(e => new TextExample(template.Render(SdftTemplate.Query(e.Instruction, e.Input), e.Output, SdftBranch.Reproduce, BundledData.EndOfText), template.ResponsePrefix + e.Output));
        var dataset = TokenizedDataset.Create(examples, tokenizer, null, 64, 63);
        var trainer = provider.GetRequiredService<IDistillationTrainerFactory>().Create(model, provider.GetRequiredService<IObjectiveFactory>().Create(SdftPreset.Objective), null, o =>
        {
            SdftPreset.Apply(o, SdftTask.FromName("math"));
            o.GradientAccumulationSteps = 1;
            o.LearningRate = 1e-2;
            o.MaxSteps = 4;
            o.OutputDirectory = tmp.Path;
            o.SaveCheckpoints = false;
            o.TensorBoard = false;
        });
        var result = trainer.Train(new DistillationBatchSource(dataset, new BatchSampler(dataset.Count, SdftPreset.BatchSize * 2, 1)));
        Assert.Equal(4, result.Steps);

        var after = model.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        foreach (var (name, value) in before.Select(p => (p.Key, p.Value)))
        {
            Assert.True(value.eq(after[name]).all().item<bool>(), $"base parameter {name} changed");
        }

        var adapters = after.Where(p => p.Key.Contains("lora_", StringComparison.Ordinal)).ToList();
        Assert.NotEmpty(adapters);
        Assert.All(adapters, p => Assert.True(p.Value.requires_grad, p.Key));
        Assert.Contains(adapters, p => p.Key.Contains("lora_B", StringComparison.Ordinal) && p.Value.abs().max().item<float>() > 0); // B starts at zero
        Assert.Equal(adapters.Sum(p => p.Value.numel()), lora.CountTrainableParameters());
        foreach (var t in before.Values)
        {
            t.Dispose();
        }
    }
}
