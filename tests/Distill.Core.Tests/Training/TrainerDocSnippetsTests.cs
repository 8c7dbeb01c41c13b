using System.Runtime.CompilerServices;
using System.Text.RegularExpressions;
using Distill.Tests.Shared;
using Distill.Training;
using static TorchSharp.torch;

namespace Distill.Core.Tests.Training.DocSnippets;

#pragma warning disable SA1402, SA1649, SA1600, CS1591 // verbatim copies of the docs/trainer.md snippets

/// Ignores the first scored label of one random row (an example of a deterministic, seeded transform).
public sealed class DropOneLabel : IBatchTransform
{
    public DistillationBatch Transform(DistillationBatch batch, BatchTransformContext context)
    {
        var random = context.CreateRandom();               // seeded by (seed, epoch, index): exact resume
        var labels = batch.Labels.clone();
        var row = random.Next((int)labels.shape[0]);
        var first = labels[row].ne(DistillationBatch.IgnoreIndex).nonzero()[0, 0].item<long>();
        labels[row, first] = tensor(DistillationBatch.IgnoreIndex);
        return new DistillationBatch
        {
            InputIds = batch.InputIds,                      // reusing the input's tensors is fine
            AttentionMask = batch.AttentionMask,
            Labels = labels,
            PositionIds = batch.PositionIds,
            ExampleIds = batch.ExampleIds,
        };
    }
}

/// A teacher whose top-k log-probabilities come from elsewhere (a file, a server).
public sealed class MyCachedTeacher(int vocabularySize, int k) : ITeacher
{
    public TeacherInfo Info => new() { Capabilities = TeacherCapabilities.SparseTopK, VocabularySize = vocabularySize };

    public TeacherOutput Infer(DistillationBatch batch, ObjectiveRequirements requirements) =>
        InferAsync(batch, requirements).GetAwaiter().GetResult();

    public async Task<TeacherOutput> InferAsync(DistillationBatch batch, ObjectiveRequirements requirements, CancellationToken cancellationToken = default)
    {
        await Task.Yield(); // the I/O wait: read the rows of batch.ExampleIds from the cache
        long rows = batch.InputIds.shape[0], positions = batch.InputIds.shape[1];
        return new TeacherOutput
        {
            TopKLogProbs = full(new[] { rows, positions, k }, -MathF.Log(k)),          // [B, T, K], uniform here
            TopKIndices = arange(k).expand(rows, positions, k),                         // [B, T, K] int64
            TopKLogTailMass = full(new[] { rows, positions }, float.NegativeInfinity), // [B, T]: no tail
        };
    }
}

#pragma warning restore SA1402, SA1649, SA1600, CS1591

/// <summary>The two snippets of docs/trainer.md, compiled (above, verbatim) and run; the docs cannot drift from them.</summary>
[Collection("Sequential")]
public partial class TrainerDocSnippetsTests
{
    [Fact]
    public void Docs_TrainerSnippets_AreThisFileVerbatim()
    {
        var here = ThisFile();
        var docs = Path.GetFullPath(Path.Combine(Path.GetDirectoryName(here)!, "..", "..", "..", "docs", "trainer.md"));
        var source = File.ReadAllText(here);
        var blocks = CSharpBlock().Matches(File.ReadAllText(docs)).Select(m => m.Groups[1].Value).ToList();
        Assert.Equal(2, blocks.Count);
        foreach (var line in blocks.SelectMany(b => b.Split('\n')).Where(l => !l.StartsWith("using ", StringComparison.Ordinal) && l.Trim().Length > 0))
        {
            Assert.Contains(line, source, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Docs_TransformAndTeacher_TrainTogether()
    {
        using var scope = NewDisposeScope();
        using var tmp = new TempFolder();
        var data = new SyntheticBatchSource(examples: 4, batchSize: 2, vocab: 13, seed: 3);
        long expected = 0;
        for (var i = 0; i < 2; i++)
        {
            using var b = data.GetBatch(0, i);
            expected += b.CountValidTokens() - 1; // one label dropped per batch
        }

        var progress = new List<TrainingProgress>();
        var teacher = new MyCachedTeacher(13, 4);
        var trainer = new DistillationTrainer(new TinyCausalLM(13, 8, seed: 1), new SumForwardKlObjective(), teacher, new TrainingOptions { OutputDirectory = tmp.Path, MaxSteps = 2, LogEverySteps = 1, TensorBoard = false, SaveCheckpoints = false })
        {
            Progress = new SyncProgress<TrainingProgress>(progress.Add),
        };
        trainer.BatchTransforms.Add(new DropOneLabel());
        using var batch = data.GetBatch(0, 0);
        var output = teacher.Infer(batch, new ObjectiveRequirements());
        Assert.Equal(new long[] { 2, batch.InputIds.shape[1], 4 }, output.TopKIndices!.shape);
        Assert.Equal(TeacherCapabilities.SparseTopK, teacher.Info.Capabilities);

        // SumForwardKlObjective needs dense logits: the sparse teacher is rejected at the first batch, naming the step.
        var e = Assert.Throws<InvalidOperationException>(() => trainer.Train(data));
        Assert.Contains("Step 1", e.Message);
        Assert.Contains("returned no logits", e.Message);

        var sft = new DistillationTrainer(new TinyCausalLM(13, 8, seed: 1), new SumCrossEntropyObjective(), null, new TrainingOptions { OutputDirectory = tmp.Path, MaxSteps = 2, LogEverySteps = 1, TensorBoard = false, SaveCheckpoints = false })
        {
            Progress = new SyncProgress<TrainingProgress>(progress.Add),
        };
        sft.BatchTransforms.Add(new DropOneLabel());
        sft.Train(data);
        Assert.Equal(expected, progress[^1].Tokens);
    }

    private static string ThisFile([CallerFilePath] string path = "") => path;

    [GeneratedRegex("```csharp\\n(.*?)```", RegexOptions.Singleline)]
    private static partial Regex CSharpBlock();
}
