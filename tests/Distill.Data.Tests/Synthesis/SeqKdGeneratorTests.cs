using Distill.Data.Synthesis;
using Distill.Generation;
using Distill.Models;
using Distill.Tests.Shared;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using static TorchSharp.torch;

namespace Distill.Data.Tests.Synthesis;

[Collection("Sequential")]
public class SeqKdGeneratorTests
{
    private static readonly IReadOnlyList<InstructionExample> Rows = [.. BundledData.Load(BundledSplit.Dev).Take(10)];

    private static SeqKdOptions Greedy() => new()
    {
        Template = "compact",
        MaxNewTokens = 6,
        BatchSize = 3,
        ChunkSize = 4,
        Seed = 7,
        EmptyAnswers = SeqKdRowAction.Keep,
        TeacherName = "tiny-test-teacher",
    };

    private static SeqKdOptions Sampled(int k = 2)
    {
        var o = Greedy();
        o.DoSample = true;
        o.Temperature = 1.5;
        o.NumSamples = k;
        return o;
    }

    /// <summary>
    /// A random 1-layer GPT-2 whose EOS embedding row is scaled ×12 (tied head): its EOS logit then varies from context to
    /// context with 12× the spread of the other logits, so a 6-token greedy answer sometimes ends on EOS at once (empty),
    /// sometimes after a few tokens, and sometimes runs to the limit: every finish kind appears on the ten prompts
    /// (checked in the first test; the scale was chosen by trying 3 to 24 on this seed).
    /// </summary>
    private static CausalLM TinyTeacher()
    {
        var tokenizer = BundledData.TokenizerA();
        var eos = tokenizer.EosTokenId!.Value;
        var model = AutoCausalLM.FromConfig(new Gpt2Config
        {
            ModelType = "gpt2",
            VocabSize = tokenizer.VocabSize,
            HiddenSize = 32,
            NumHiddenLayers = 1,
            NumAttentionHeads = 2,
            MaxPositionEmbeddings = 512,
            EosTokenIds = [eos],
            BosTokenId = eos,
        }, seed: 3);
        using (no_grad())
        {
            model.EmbeddingWeight[eos].mul_(12);
        }

        return model;
    }

    [Fact]
    public void Run_Greedy_EqualsTextGeneratorOnEachPromptAlone()
    {
        using var tmp = new TempFolder();
        using var model = TinyTeacher();
        var tokenizer = BundledData.TokenizerA();
        var result = new SeqKdGenerator(model, tokenizer, Greedy()).Run(Rows, Path.Combine(tmp.Path, "answers.jsonl"));
        Assert.True(result.Completed);
        Assert.Equal(Rows.Count, result.Records.Count);
        for (var i = 0; i < Rows.Count; i++)
        {
            // The reference: the same prompt alone (no padding, batch of one) through TextGenerator.
            var prompt = InstructionTemplate.Compact.Render(Rows[i]);
            var ids = tokenizer.EncodeToIds(prompt, addSpecialTokens: false).Select(t => (long)t).ToArray();
            using var generated = TextGenerator.Generate(model, tensor(ids, [1, ids.Length]), new GenerationOptions { MaxNewTokens = 6, EosTokenIds = [tokenizer.EosTokenId!.Value] });
            var length = (int)generated.Lengths[0];
            var tokens = generated.GeneratedIds[0, ..length].data<long>().Select(t => (int)t).ToArray();
            var record = result.Records[i];
            Assert.Equal((i, 0), (record.Index, record.Sample));
            Assert.Equal(prompt, record.Instruction);
            Assert.Equal(tokenizer.Decode(tokens, skipSpecialTokens: true), record.TeacherOutput);
            Assert.Equal(length, record.Tokens);
            Assert.Equal(generated.Stopped[0] ? SeqKdFinishReason.Eos : SeqKdFinishReason.Length, record.FinishReason);
            Assert.Equal(Rows[i].Output, record.Output);
            Assert.Equal(Rows[i].Instruction, record.SourceInstruction);
            Assert.Equal(Rows[i].Input, record.Input);
        }

        // The tiny teacher shows every kind of answer, so the policies below are exercised on real rows.
        Assert.Contains(result.Records, r => r.FinishReason == SeqKdFinishReason.Length);
        Assert.Contains(result.Records, r => r.FinishReason == SeqKdFinishReason.Eos && r.TeacherOutput.Length > 0);
        Assert.Contains(result.Records, r => r.TeacherOutput.Length == 0);
    }

    [Fact]
    public void Read_ReloadsTheFileIdentically_AsInstructionAndTextExamples()
    {
        using var tmp = new TempFolder();
        using var model = TinyTeacher();
        var tokenizer = BundledData.TokenizerA();
        var path = Path.Combine(tmp.Path, "answers.jsonl");
        var result = new SeqKdGenerator(model, tokenizer, Greedy()).Run(Rows, path);

        var file = SeqKdDataset.Read(path);
        Assert.Equal(result.Records, file.Records);
        Assert.Equal("tiny-test-teacher", file.Manifest.Teacher);
        Assert.Equal("compact", file.Manifest.Template);
        Assert.Equal("instruction", file.Manifest.Source);
        Assert.Equal(TeacherCacheHashes.Tokenizer(tokenizer), file.Manifest.TokenizerHash);
        Assert.Equal(7, file.Manifest.Generation.Seed);
        Assert.Equal(512 - 6, file.Manifest.Generation.MaxPromptTokens); // max_position_embeddings − max_new_tokens
        Assert.Equal(result.Statistics, file.Manifest.Statistics);
        Assert.Equal(Rows.Count, file.Manifest.Prompts);

        // Instruction examples: the compact template answers after a space, so " 68" is stored and "68" is the output.
        var instructions = file.ToInstructionExamples();
        var texts = file.ToTextExamples();
        for (var i = 0; i < file.Records.Count; i++)
        {
            var r = file.Records[i];
            Assert.Equal(Rows[r.Index].Instruction, instructions[i].Instruction);
            Assert.Equal(Rows[r.Index].Task, instructions[i].Task);
            var rendered = InstructionTemplate.Compact.Apply(instructions[i]);
            Assert.Equal(r.Instruction, rendered.Prompt);
            Assert.Equal(r.TeacherOutput.StartsWith(' ') ? r.TeacherOutput : " " + r.TeacherOutput, rendered.Response);
            Assert.Equal(new TextExample(r.Instruction, r.TeacherOutput) { References = [Rows[r.Index].Output] }.Response, texts[i].Response);
            Assert.Equal(Rows[r.Index].Output, Assert.Single(texts[i].References));
        }

        // The normal training path takes them.
        var dataset = TokenizedDataset.Create(texts, tokenizer, null, maxLength: 64, maxPromptLength: 48);
        Assert.Equal(texts.Count, dataset.Count);

        // A complete file with the same settings is read back, not regenerated.
        var again = new SeqKdGenerator(model, tokenizer, Greedy()).Run(Rows, path);
        Assert.Equal(result.Records, again.Records);
        Assert.Equal(4 - 1, again.ResumedChunks); // 10 prompts in chunks of 4
    }

    [Fact]
    public void Run_CancelledAfterFirstChunk_ResumesToTheSameBytes()
    {
        using var tmp = new TempFolder();
        using var model = TinyTeacher();
        var tokenizer = BundledData.TokenizerA();
        var reference = Path.Combine(tmp.Path, "full.jsonl");
        var full = new SeqKdGenerator(model, tokenizer, Sampled()).Run(Rows, reference);
        Assert.True(full.Completed);
        Assert.False(File.Exists(reference + ".partial"));

        var resumedPath = Path.Combine(tmp.Path, "resumed.jsonl");
        using var cancel = new CancellationTokenSource();
        var first = new SeqKdGenerator(model, tokenizer, Sampled()) { Progress = new SyncProgress(p => cancel.Cancel()) }.Run(Rows, resumedPath, cancel.Token);
        Assert.False(first.Completed);
        Assert.Equal(resumedPath + ".partial", first.OutputPath);
        Assert.False(File.Exists(resumedPath));
        Assert.Equal(4, first.Statistics.Prompts);
        // A crash while the next chunk was being appended: a torn line after the recorded chunk.
        File.AppendAllText(resumedPath + ".partial", "{\"index\":4,\"sample\":0,\"instruction\":\"Rev");

        var second = new SeqKdGenerator(model, tokenizer, Sampled()).Run(Rows, resumedPath);
        Assert.True(second.Completed);
        Assert.Equal(1, second.ResumedChunks);
        Assert.Equal(File.ReadAllBytes(reference), File.ReadAllBytes(resumedPath));
        Assert.Equal(File.ReadAllBytes(SeqKdDataset.ManifestPath(reference)), File.ReadAllBytes(SeqKdDataset.ManifestPath(resumedPath)));
        Assert.Equal(full.Records, second.Records);
        Assert.Equal(full.Statistics, second.Statistics);
        Assert.False(File.Exists(resumedPath + ".partial.progress"));
    }

    [Fact]
    public void Run_PartialFileOfOtherSettings_IsNotResumed()
    {
        using var tmp = new TempFolder();
        using var model = TinyTeacher();
        var tokenizer = BundledData.TokenizerA();
        var path = Path.Combine(tmp.Path, "a.jsonl");
        using var cancel = new CancellationTokenSource();
        new SeqKdGenerator(model, tokenizer, Sampled()) { Progress = new SyncProgress(p => cancel.Cancel()) }.Run(Rows, path, cancel.Token);
        var other = Sampled();
        other.Seed = 8;
        var ex = Assert.Throws<InvalidDataException>(() => new SeqKdGenerator(model, tokenizer, other).Run(Rows, path));
        Assert.Contains("other settings or data", ex.Message, StringComparison.Ordinal);

        // A complete file of other settings is not silently reused either.
        var done = Path.Combine(tmp.Path, "b.jsonl");
        new SeqKdGenerator(model, tokenizer, Greedy()).Run(Rows, done);
        var ex2 = Assert.Throws<InvalidDataException>(() => new SeqKdGenerator(model, tokenizer, Sampled()).Run(Rows, done));
        Assert.Contains("delete it", ex2.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Run_KSampledAnswers_AreReproducibleForASeed_AndDifferAcrossSamples()
    {
        using var tmp = new TempFolder();
        using var model = TinyTeacher();
        var tokenizer = BundledData.TokenizerA();
        var options = Sampled(k: 3);
        options.EmptyAnswers = SeqKdRowAction.Keep;
        var a = new SeqKdGenerator(model, tokenizer, options).Run(Rows, Path.Combine(tmp.Path, "a.jsonl"));
        var b = new SeqKdGenerator(model, tokenizer, Sampled(k: 3)).Run(Rows, Path.Combine(tmp.Path, "b.jsonl"));
        Assert.Equal(File.ReadAllBytes(Path.Combine(tmp.Path, "a.jsonl")), File.ReadAllBytes(Path.Combine(tmp.Path, "b.jsonl")));
        Assert.Equal(Rows.Count * 3, a.Records.Count);
        Assert.Equal(Enumerable.Range(0, Rows.Count).SelectMany(i => Enumerable.Range(0, 3).Select(s => (i, s))), a.Records.Select(r => (r.Index, r.Sample)));

        // Samples of one prompt differ: on most prompts the three answers are not all the same.
        var distinct = a.Records.GroupBy(r => r.Index).Count(g => g.Select(r => r.TeacherOutput).Distinct().Count() > 1);
        Assert.True(distinct >= Rows.Count / 2, $"only {distinct} of {Rows.Count} prompts got different samples");

        // Another seed draws other answers.
        var other = Sampled(k: 3);
        other.Seed = 8;
        var c = new SeqKdGenerator(model, tokenizer, other).Run(Rows, Path.Combine(tmp.Path, "c.jsonl"));
        Assert.NotEqual(a.Records.Select(r => r.TeacherOutput), c.Records.Select(r => r.TeacherOutput));
    }

    [Fact]
    public void Run_TruncatedAnswers_KeptOrDroppedAndCounted()
    {
        using var tmp = new TempFolder();
        using var model = TinyTeacher();
        var tokenizer = BundledData.TokenizerA();
        var kept = new SeqKdGenerator(model, tokenizer, Greedy()).Run(Rows, Path.Combine(tmp.Path, "keep.jsonl"));
        var truncated = kept.Records.Count(r => r.FinishReason == SeqKdFinishReason.Length);
        Assert.True(truncated > 0);
        Assert.Equal(truncated, kept.Statistics.Truncated);
        Assert.Equal(0, kept.Statistics.TruncatedDropped);
        Assert.All(kept.Records.Where(r => r.FinishReason == SeqKdFinishReason.Length), r => Assert.Equal(6, r.Tokens));

        var options = Greedy();
        options.TruncatedAnswers = SeqKdRowAction.Drop;
        var dropped = new SeqKdGenerator(model, tokenizer, options).Run(Rows, Path.Combine(tmp.Path, "drop.jsonl"));
        Assert.Equal(truncated, dropped.Statistics.Truncated);
        Assert.Equal(truncated, dropped.Statistics.TruncatedDropped);
        Assert.Equal(kept.Records.Where(r => r.FinishReason == SeqKdFinishReason.Eos), dropped.Records);
        Assert.Equal(dropped.Records.Count, dropped.Statistics.Written);

        options.TruncatedAnswers = SeqKdRowAction.Throw;
        var first = kept.Records.First(r => r.FinishReason == SeqKdFinishReason.Length).Index;
        var ex = Assert.Throws<InvalidDataException>(() => new SeqKdGenerator(model, tokenizer, options).Run(Rows, Path.Combine(tmp.Path, "throw.jsonl")));
        Assert.Contains($"Example {first}, sample 0", ex.Message, StringComparison.Ordinal);
        Assert.Contains("MaxNewTokens", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Run_EmptyAnswersAndOverlongPrompts_SkippedAndCounted()
    {
        using var tmp = new TempFolder();
        using var model = TinyTeacher();
        var tokenizer = BundledData.TokenizerA();
        var kept = new SeqKdGenerator(model, tokenizer, Greedy()).Run(Rows, Path.Combine(tmp.Path, "keep.jsonl"));
        var empty = kept.Records.Count(r => string.IsNullOrWhiteSpace(r.TeacherOutput));
        Assert.True(empty > 0);

        var options = Greedy();
        options.EmptyAnswers = SeqKdRowAction.Drop;
        var dropped = new SeqKdGenerator(model, tokenizer, options).Run(Rows, Path.Combine(tmp.Path, "drop.jsonl"));
        Assert.Equal(empty, dropped.Statistics.Empty);
        Assert.Equal(empty, dropped.Statistics.EmptyDropped);
        Assert.Equal(Rows.Count - empty, dropped.Records.Count);
        Assert.DoesNotContain(dropped.Records, r => string.IsNullOrWhiteSpace(r.TeacherOutput));

        // Prompt limit: the compact prompt of each row is its byte count (+0 specials) in the byte tokenizer.
        var lengths = Rows.Select(r => tokenizer.EncodeToIds(InstructionTemplate.Compact.Render(r), addSpecialTokens: false).Count).ToList();
        var limit = lengths.Order().ElementAt(lengths.Count / 2);
        options = Greedy();
        options.MaxPromptTokens = limit;
        var cut = new SeqKdGenerator(model, tokenizer, options).Run(Rows, Path.Combine(tmp.Path, "limit.jsonl"));
        var overlong = lengths.Count(l => l > limit);
        Assert.True(overlong > 0);
        Assert.Equal(overlong, cut.Statistics.OverlongPrompts);
        Assert.Equal(Rows.Count - overlong, cut.Statistics.Generated);
        Assert.Equal(Enumerable.Range(0, Rows.Count).Where(i => lengths[i] <= limit), cut.Records.Select(r => r.Index));

        options.OverlongPrompts = SeqKdRowAction.Throw;
        var ex = Assert.Throws<InvalidDataException>(() => new SeqKdGenerator(model, tokenizer, options).Run(Rows, Path.Combine(tmp.Path, "throw.jsonl")));
        Assert.Contains($"Example {lengths.FindIndex(l => l > limit)}: the prompt has", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Run_TextPrompts_AreUsedAsGiven()
    {
        using var tmp = new TempFolder();
        using var model = TinyTeacher();
        var tokenizer = BundledData.TokenizerA();
        var prompts = Rows.Select(InstructionTemplate.Alpaca.Apply).ToList();
        var path = Path.Combine(tmp.Path, "text.jsonl");
        var result = new SeqKdGenerator(model, tokenizer, Greedy()).Run(prompts, path);
        Assert.Equal(prompts.Select(p => p.Prompt), result.Records.Select(r => r.Instruction));
        Assert.All(result.Records, r => Assert.Null(r.SourceInstruction));
        var file = SeqKdDataset.Read(path);
        Assert.Equal("text", file.Manifest.Source);
        Assert.Null(file.Manifest.Template);
        var ex = Assert.Throws<InvalidOperationException>(() => file.ToInstructionExamples());
        Assert.Contains("text prompts", ex.Message, StringComparison.Ordinal);
        Assert.Equal(result.Records.Select(r => r.TeacherOutput), file.ToTextExamples().Select(e => e.Response));
    }

    [Fact]
    public void Read_CorruptFile_NamesTheFileAndLine()
    {
        using var tmp = new TempFolder();
        using var model = TinyTeacher();
        var path = Path.Combine(tmp.Path, "answers.jsonl");
        new SeqKdGenerator(model, BundledData.TokenizerA(), Greedy()).Run(Rows, path);
        var lines = File.ReadAllLines(path);

        File.WriteAllLines(path, [.. lines.Take(2), "{\"index\":2,\"sample\":0,\"instr", .. lines.Skip(3)]);
        var ex = Assert.Throws<InvalidDataException>(() => SeqKdDataset.Read(path));
        Assert.Contains("answers.jsonl:3: not a SeqKD row", ex.Message, StringComparison.Ordinal);

        File.WriteAllLines(path, [.. lines.Take(3), lines[3].Replace("\"index\":3", "\"index\":99", StringComparison.Ordinal), .. lines.Skip(4)]);
        ex = Assert.Throws<InvalidDataException>(() => SeqKdDataset.Read(path));
        Assert.Contains("answers.jsonl:4: 'index' 99 is outside [0, 10)", ex.Message, StringComparison.Ordinal);

        File.WriteAllLines(path, [lines[1], lines[0], .. lines.Skip(2)]);
        ex = Assert.Throws<InvalidDataException>(() => SeqKdDataset.Read(path));
        Assert.Contains("answers.jsonl:2: row (0, 0) is not after the previous row (1, 0)", ex.Message, StringComparison.Ordinal);

        File.WriteAllLines(path, [.. lines.Take(4), lines[4].Replace("\"teacher_output\":", "\"answer\":", StringComparison.Ordinal), .. lines.Skip(5)]);
        ex = Assert.Throws<InvalidDataException>(() => SeqKdDataset.Read(path));
        Assert.Contains("answers.jsonl:5: missing 'teacher_output'", ex.Message, StringComparison.Ordinal);

        // A well-formed but edited row: caught by the manifest's file hash.
        File.WriteAllLines(path, [lines[0].Replace("\"teacher_output\":\"", "\"teacher_output\":\"edited ", StringComparison.Ordinal), .. lines.Skip(1)]);
        ex = Assert.Throws<InvalidDataException>(() => SeqKdDataset.Read(path));
        Assert.Contains("SHA-256", ex.Message, StringComparison.Ordinal);

        File.WriteAllLines(path, lines.Take(5));
        ex = Assert.Throws<InvalidDataException>(() => SeqKdDataset.Read(path));
        Assert.Contains("5 rows but", ex.Message, StringComparison.Ordinal);

        File.Delete(SeqKdDataset.ManifestPath(path));
        var missing = Assert.Throws<FileNotFoundException>(() => SeqKdDataset.Read(path));
        Assert.Contains("manifest", missing.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Options_InvalidCombinations_NameTheOption()
    {
        var options = new SeqKdOptions { NumSamples = 2, Template = "nope", OverlongPrompts = SeqKdRowAction.Keep, BatchSize = 0 };
        var ex = Assert.Throws<ArgumentException>(options.ThrowIfInvalid);
        Assert.Contains("SeqKdOptions.NumSamples = 2 needs DoSample", ex.Message, StringComparison.Ordinal);
        Assert.Contains("SeqKdOptions.Template: Unknown prompt template 'nope'", ex.Message, StringComparison.Ordinal);
        Assert.Contains("SeqKdOptions.OverlongPrompts", ex.Message, StringComparison.Ordinal);
        Assert.Contains("BatchSize", ex.Message, StringComparison.Ordinal);

        var services = new ServiceCollection();
        services.AddDistill().AddDistillSeqKd(o => o.ChunkSize = 0);
        using var provider = services.BuildServiceProvider();
        var failure = Assert.Throws<OptionsValidationException>(() => provider.GetRequiredService<IOptions<SeqKdOptions>>().Value);
        Assert.Contains(failure.Failures, f => f.Contains("ChunkSize", StringComparison.Ordinal));

        var good = new ServiceCollection();
        good.AddDistill().AddDistillSeqKd(o => (o.DoSample, o.NumSamples) = (true, 4));
        using var goodProvider = good.BuildServiceProvider();
        Assert.Equal(4, goodProvider.GetRequiredService<IOptions<SeqKdOptions>>().Value.NumSamples);
    }

    [Fact]
    public void BatchSeed_DependsOnSeedChunkAndBatch()
    {
        var seeds = new HashSet<long>();
        foreach (var seed in new[] { 0, 1, 42 })
        {
            for (var chunk = 0; chunk < 20; chunk++)
            {
                for (var batch = 0; batch < 20; batch++)
                {
                    Assert.True(seeds.Add(SeqKdGenerator.BatchSeed(seed, chunk, batch)));
                }
            }
        }

        Assert.Equal(SeqKdGenerator.BatchSeed(42, 3, 1), SeqKdGenerator.BatchSeed(42, 3, 1));
        Assert.All(seeds, s => Assert.True(s >= 0));
    }

    private sealed class SyncProgress(Action<SeqKdProgress> report) : IProgress<SeqKdProgress>
    {
        public void Report(SeqKdProgress value) => report(value);
    }
}
