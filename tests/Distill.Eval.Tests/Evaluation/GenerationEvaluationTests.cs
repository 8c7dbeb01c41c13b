using Distill.Data;
using Distill.Eval.Evaluation;
using Distill.Eval.Metrics;
using Distill.Generation;
using Distill.Models;
using TorchSharp;

namespace Distill.Eval.Tests.Evaluation;

public sealed class GenerationEvaluationTests
{
    private static (CausalLM Model, TokenizedDataset Set) Setup()
    {
        var tokenizer = BundledData.TokenizerB();
        var examples = BundledData.Load(BundledSplit.Test).Take(7).Select(InstructionTemplate.Compact.Apply).ToList();
        var set = TokenizedDataset.Create(examples, tokenizer, null, maxLength: 64, maxPromptLength: 32);
        var model = AutoCausalLM.FromConfig(new Gpt2Config
        {
            ModelType = "gpt2", VocabSize = tokenizer.VocabSize, HiddenSize = 16, NumHiddenLayers = 1, NumAttentionHeads = 2, MaxPositionEmbeddings = 64,
        }, seed: 7);
        return (model, set);
    }

    [Fact]
    public void Evaluate_Greedy_EqualsEachPromptGeneratedAloneDecodedAndScored()
    {
        var (model, set) = Setup();
        using var _ = model;
        var tokenizer = set.StudentTokenizer;
        var eos = (long)tokenizer.EosTokenId!.Value;

        // Batches of 3 (left-padded, last batch of 1) against each prompt alone, unpadded.
        var report = GenerationEvaluation.Evaluate(model, set, [new RougeLMetric()], new GenerationEvaluationOptions
        {
            Seeds = [1], BatchSize = 3, Generation = new GenerationOptions { MaxNewTokens = 6 },
        });

        var expected = new List<double>();
        for (var i = 0; i < set.Count; i++)
        {
            using var scope = torch.NewDisposeScope();
            var prompt = torch.tensor(set.StudentExamples[i].Tokens.Take(set.StudentExamples[i].PromptLength).Select(t => (long)t).ToArray()).unsqueeze(0);
            using var alone = TextGenerator.Generate(model, prompt, new GenerationOptions { MaxNewTokens = 6, EosTokenIds = [eos] });
            var text = tokenizer.Decode(alone.GeneratedIds[0, ..(int)alone.Lengths[0]].data<long>().Select(v => (int)v), skipSpecialTokens: true).Trim();
            Assert.Equal(text, report.Runs[0].Predictions[i].Prediction);
            expected.Add(RougeL.MaxFMeasure(text, set.Examples[i].References));
        }

        Assert.Equal(100 * expected.Average(), report.Metrics[RougeLMetric.MetricName].Mean, 12);
        Assert.Equal(set.Count, report.ExampleCount);
    }

    [Fact]
    public void Evaluate_SamplingTwoSeeds_ReproducibleRunToRun()
    {
        var (model, set) = Setup();
        using var _ = model;
        var options = new GenerationEvaluationOptions
        {
            Seeds = [10, 20], BatchSize = 4, Generation = new GenerationOptions { MaxNewTokens = 5, DoSample = true },
        };
        var first = GenerationEvaluation.Evaluate(model, set, [new RougeLMetric()], options);
        var second = GenerationEvaluation.Evaluate(model, set, [new RougeLMetric()], options);
        Assert.Equal(first.Runs.SelectMany(r => r.Predictions.Select(p => p.Prediction)), second.Runs.SelectMany(r => r.Predictions.Select(p => p.Prediction)));
        Assert.NotEqual(first.Runs[0].Predictions.Select(p => p.Prediction), first.Runs[1].Predictions.Select(p => p.Prediction));
        Assert.Equal([10, 20], first.Seeds);
    }

    [Fact]
    public void Evaluate_TeacherTokenizerOnStudentOnlyDataset_ThrowsNamingTheOption()
    {
        var (model, set) = Setup();
        using var _ = model;
        var ex = Assert.Throws<ArgumentException>(() => GenerationEvaluation.Evaluate(model, set, [new RougeLMetric()], new GenerationEvaluationOptions { UseTeacherTokenizer = true }));
        Assert.Contains(nameof(GenerationEvaluationOptions.UseTeacherTokenizer), ex.Message, StringComparison.Ordinal);
    }
}
