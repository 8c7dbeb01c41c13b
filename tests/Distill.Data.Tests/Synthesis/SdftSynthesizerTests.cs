using Distill.Data.Synthesis;
using Distill.Models;
using Distill.Tests.Shared;

namespace Distill.Data.Tests.Synthesis;

[Collection("Sequential")]
public class SdftSynthesizerTests
{
    private static readonly IReadOnlyList<InstructionExample> Rows =
        [.. BundledData.Load(BundledSplit.Dev).Take(11).Select(e => e with { Output = " " + e.Output + "\n" })];

    private static SdftOptions Options() => new()
    {
        DistillTemplate = "compact_distill",
        TrainTemplate = "compact",
        MaxNewTokens = 6,
        BatchSize = 4,
        Seed = 7,
        RejectTruncated = false,
    };

    private static SdftOptions WithRejectTruncated()
    {
        var o = Options();
        o.RejectTruncated = true;
        return o;
    }

    private static CausalLM TinyModel()
    {
        var tokenizer = BundledData.TokenizerA();
        var eos = (long)tokenizer.EosTokenId!.Value;
        return AutoCausalLM.FromConfig(new Gpt2Config
        {
            ModelType = "gpt2",
            VocabSize = tokenizer.VocabSize,
            HiddenSize = 32,
            NumHiddenLayers = 1,
            NumAttentionHeads = 2,
            MaxPositionEmbeddings = 128,
            EosTokenIds = [eos],
            BosTokenId = eos,
        }, seed: 3);
    }

    [Fact]
    public void Run_InterruptedAndResumed_WritesTheIdenticalFile()
    {
        using var tmp = new TempFolder();
        using var model = TinyModel();
        var tokenizer = BundledData.TokenizerA();
        var reference = Path.Combine(tmp.Path, "full.jsonl");
        var full = new SdftSynthesizer(model, tokenizer, Options()).Run(Rows, reference);
        Assert.True(full.Completed);
        Assert.Equal(Rows.Count, full.Records.Count);
        Assert.False(File.Exists(reference + SdftSynthesizer.PartialSuffix));

        // Interrupt after the second batch, then simulate a crash in the middle of writing the next line.
        var resumedPath = Path.Combine(tmp.Path, "resumed.jsonl");
        using var cancel = new CancellationTokenSource();
        var first = new SdftSynthesizer(model, tokenizer, Options()) { Progress = new SyncProgress(p => { if (p.Done >= 8) cancel.Cancel(); }) }
            .Run(Rows, resumedPath, cancel.Token);
        Assert.False(first.Completed);
        Assert.Equal(8, first.Records.Count);
        Assert.False(File.Exists(resumedPath));
        File.AppendAllText(resumedPath + SdftSynthesizer.PartialSuffix, "{\"index\":8,\"instruction\":\"Rev");

        var second = new SdftSynthesizer(model, tokenizer, Options()).Run(Rows, resumedPath);
        Assert.True(second.Completed);
        Assert.Equal(8, second.ResumedRows);
        Assert.Equal(File.ReadAllBytes(reference), File.ReadAllBytes(resumedPath));
        Assert.Equal(full.Statistics.Counts, second.Statistics.Counts);

        // A complete file is read back, not regenerated.
        var third = new SdftSynthesizer(model, tokenizer, Options()).Run(Rows, resumedPath);
        Assert.Equal(Rows.Count, third.ResumedRows);
        Assert.Equal(full.Records, third.Records);
    }

    [Fact]
    public void Run_RecordsPairOriginalRewriteAndFinal()
    {
        using var tmp = new TempFolder();
        using var model = TinyModel();
        var result = new SdftSynthesizer(model, BundledData.TokenizerA(), WithRejectTruncated()).Run(Rows, Path.Combine(tmp.Path, "d.jsonl"));
        for (var i = 0; i < Rows.Count; i++)
        {
            var r = result.Records[i];
            Assert.Equal(i, r.Index);
            Assert.Equal(Rows[i].Output.Trim(), r.Original); // stripped, as strip_dict does
            Assert.Equal(r.Reason == SdftReason.Kept ? r.Rewrite : r.Original, r.Final);
            Assert.Equal(r.Final, result.Distilled[i].Output);
        }

        // A 6-token limit on a random model: rows that ran out of tokens fall back and are counted, never dropped.
        Assert.Equal(Rows.Count, result.Statistics.Total);
        Assert.True(result.Statistics.Counts[SdftReason.Truncated] > 0);
        Assert.All(result.Records.Where(r => r.Reason == SdftReason.Truncated), r => Assert.Equal(r.Original, r.Final));
    }

    [Fact]
    public void Run_PartialFileOfOtherData_IsRejectedWithItsLine()
    {
        using var tmp = new TempFolder();
        using var model = TinyModel();
        var path = Path.Combine(tmp.Path, "d.jsonl");
        new SdftSynthesizer(model, BundledData.TokenizerA(), Options()).Run(Rows, path);
        var other = Rows.Select(e => e with { Output = e.Output + " changed" }).ToList();
        var ex = Assert.Throws<InvalidDataException>(() => new SdftSynthesizer(model, BundledData.TokenizerA(), Options()).Run(other, path));
        Assert.Contains("d.jsonl:1", ex.Message, StringComparison.Ordinal);
        Assert.Contains("delete", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Run_MathTaskWithoutAnswerCheck_Throws()
    {
        using var model = TinyModel();
        var options = Options();
        options.Task = "math";
        var ex = Assert.Throws<ArgumentException>(() => new SdftSynthesizer(model, BundledData.TokenizerA(), options).Run(Rows, Path.Combine(Path.GetTempPath(), "never.jsonl")));
        Assert.Contains("answer check", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void PromptIds_CutToCutoffLength()
    {
        using var model = TinyModel();
        var tokenizer = BundledData.TokenizerA();
        var options = Options();
        options.CutoffLength = 10;
        var row = new InstructionExample("Reverse the word", "plant", "tnalp");
        var reproduce = new SdftSynthesizer(model, tokenizer, options).PromptIds(SdftTemplate.CompactDistill, row, "tnalp", "<|endoftext|>");
        Assert.Equal(10, reproduce.Count); // reproduce: the first cutoff_len prompt tokens
        options.Branch = SdftBranch.Main;
        var main = new SdftSynthesizer(model, tokenizer, options).PromptIds(SdftTemplate.CompactDistill, row, "tnalp", "<|endoftext|>");
        // main: target share int(10 · 5 / (prompt + 5)) = 1 (the prompt is BOS + 47 byte tokens), so the source keeps 9.
        Assert.Equal(9, main.Count);
    }

    private sealed class SyncProgress(Action<SdftProgress> report) : IProgress<SdftProgress>
    {
        public void Report(SdftProgress value) => report(value);
    }
}
