using Distill.Core.Tests.Models;
using Distill.Generation;
using Distill.Training;
using Distill.Training.Sources;
using static Distill.Core.Tests.Training.Sources.SourceBatches;
using static TorchSharp.torch;

namespace Distill.Core.Tests.Training.Sources;

/// <summary>Truncated and empty generations, long prompts, mismatched teachers and bad batches: counted, dropped or named in a clear error.</summary>
[Collection("Sequential")]
public class SampleSourceLimitsTests
{
    private const long Pad = 60;

    private static readonly (long[] Prompt, long[] Response)[] Rows =
    [
        ([5, 6, 7], [8, 9]),
        ([10, 11, 12, 13, 14], [1]),
        ([20], [21, 22, 23]),
    ];

    /// <summary>What the student generates greedily for each prompt with no EOS at all.</summary>
    private static long[][] Unstopped(ICausalLM model, int maxNew) =>
        [.. Rows.Select(r =>
        {
            using var g = TextGenerator.Generate(model, tensor(r.Prompt, [1, r.Prompt.Length]), new GenerationOptions { MaxNewTokens = maxNew });
            return g.GeneratedIds[0].data<long>().ToArray();
        })];

    [Theory]
    [InlineData(TruncatedGenerationPolicy.Keep)]
    [InlineData(TruncatedGenerationPolicy.Drop)]
    public void Truncated_KeptOrDropped_AndCounted(TruncatedGenerationPolicy policy)
    {
        using var scope = NewDisposeScope();
        var student = TinyModels.Create("gpt2", seed: 7);
        var unstopped = Unstopped(student, 4);
        // An EOS id that none of the rows generates: every row runs to MaxNewTokens.
        var eos = Enumerable.Range(0, 61).Select(i => (long)i).First(i => unstopped.All(r => !r.Contains(i)));
        var source = SampleSources.Create(AtkdSampleSource.Student, student, options: new SampleSourceOptions { MaxNewTokens = 4, EosTokenIds = [eos], PadTokenId = Pad, TruncatedGenerations = policy });

        var output = source.Transform(Make(Rows, Pad), Context());

        for (var b = 0; b < Rows.Length; b++)
        {
            Assert.Equal([.. Rows[b].Prompt, .. unstopped[b]], RealTokens(output, b)); // the row stays, with its response
            Assert.Equal(policy == TruncatedGenerationPolicy.Keep ? unstopped[b] : [], ScoredLabels(output, b));
        }

        var stats = source.Statistics;
        Assert.Equal(3, stats.TruncatedRows);
        Assert.Equal(policy == TruncatedGenerationPolicy.Drop ? 3 : 0, stats.DroppedRows);
        Assert.Equal(12, stats.GeneratedTokens);
    }

    [Theory]
    [InlineData(EmptyResponsePolicy.Keep)]
    [InlineData(EmptyResponsePolicy.Drop)]
    [InlineData(EmptyResponsePolicy.Throw)]
    public void EmptyResponse_KeptDroppedOrRejected_AndCounted(EmptyResponsePolicy policy)
    {
        using var scope = NewDisposeScope();
        var student = TinyModels.Create("gpt2", seed: 7);
        var unstopped = Unstopped(student, 4);
        // Row 0's first greedy token becomes EOS: its response is empty (an EOS and nothing else).
        var eos = unstopped[0][0];
        var source = SampleSources.Create(AtkdSampleSource.Student, student, options: new SampleSourceOptions { MaxNewTokens = 4, EosTokenIds = [eos], PadTokenId = Pad, EmptyResponses = policy });

        if (policy == EmptyResponsePolicy.Throw)
        {
            var e = Assert.Throws<InvalidOperationException>(() => source.Transform(Make(Rows, Pad), Context(index: 4)));
            Assert.Contains("micro-batch 4 of epoch 0, row 0 (example 100)", e.Message);
            Assert.Contains("empty", e.Message);
            return;
        }

        var output = source.Transform(Make(Rows, Pad), Context());

        Assert.Equal([.. Rows[0].Prompt, eos], RealTokens(output, 0));
        Assert.Equal(policy == EmptyResponsePolicy.Keep ? [eos] : [], ScoredLabels(output, 0));
        Assert.NotEmpty(ScoredLabels(output, 1));
        Assert.True(source.Statistics.EmptyResponses >= 1);
        Assert.Equal(policy == EmptyResponsePolicy.Drop ? source.Statistics.EmptyResponses : 0, source.Statistics.DroppedRows);
    }

    [Fact]
    public void LongPrompt_ThrowsNamingTheRowAndLengths_OrIsSkippedAndCounted()
    {
        using var scope = NewDisposeScope();
        var student = TinyModels.Create("gpt2", seed: 7);
        var strict = SampleSources.Create(AtkdSampleSource.Student, student, options: new SampleSourceOptions { MaxNewTokens = 6, MaxSequenceLength = 10 });
        var e = Assert.Throws<InvalidOperationException>(() => strict.Transform(Make(Rows, Pad), Context(index: 2, epoch: 1)));
        Assert.Contains("micro-batch 2 of epoch 1, row 1 (example 101): the prompt has 5 tokens; with 6 new tokens it exceeds the context window of 10", e.Message);

        var lenient = SampleSources.Create(AtkdSampleSource.Student, student, options: new SampleSourceOptions { MaxNewTokens = 6, MaxSequenceLength = 10, LongPrompts = LongPromptPolicy.Skip });
        var output = lenient.Transform(Make(Rows, Pad), Context());
        var reference = SampleSources.Create(AtkdSampleSource.Student, student, options: new SampleSourceOptions { MaxNewTokens = 6 }).Transform(Make(Rows, Pad), Context());

        Assert.Equal(Rows[1].Prompt, RealTokens(output, 1)); // the prompt only, nothing scored
        Assert.Empty(ScoredLabels(output, 1));
        foreach (var b in new[] { 0, 2 })
        {
            Assert.Equal(RealTokens(reference, b), RealTokens(output, b));
            Assert.Equal(ScoredLabels(reference, b), ScoredLabels(output, b));
        }

        Assert.Equal((1L, 2L), (lenient.Statistics.SkippedPrompts, lenient.Statistics.GeneratedRows));
    }

    [Fact]
    public void TeacherWithAnotherVocabularyOrTokenizer_IsRejectedAtConstruction()
    {
        using var scope = NewDisposeScope();
        var student = TinyModels.Create("gpt2", seed: 7); // 61 entries
        var llama = new LocalModelTeacher(TinyModels.Create("llama", seed: 3)); // 67 entries
        foreach (var kind in new[] { AtkdSampleSource.Student, AtkdSampleSource.MixRequestGt, AtkdSampleSource.MixToken })
        {
            var e = Assert.Throws<ArgumentException>(() => SampleSources.Create(kind, student, llama));
            Assert.Contains("the student has 61 entries and the teacher 67", e.Message);
        }

        Assert.Throws<ArgumentException>(() => new MixTokenSource(student, llama.Model, new SampleSourceOptions()));
        var other = new DescribedTeacher(new TeacherInfo { VocabularySize = 61, TokenizerId = "teacher-bpe" });
        var t = Assert.Throws<ArgumentException>(() => SampleSources.Create(AtkdSampleSource.Student, student, other, new SampleSourceOptions { TokenizerId = "student-bpe" }));
        Assert.Contains("'teacher-bpe'", t.Message);
        Assert.Contains("'student-bpe'", t.Message);

        var m = Assert.Throws<ArgumentException>(() => SampleSources.Create(AtkdSampleSource.MixToken, student, other));
        Assert.Contains("needs a local teacher model", m.Message);
        Assert.IsType<DatasetSource>(SampleSources.Create(AtkdSampleSource.Gt, student, llama)); // gt never feeds student ids to the teacher here
    }

    [Fact]
    public void BadBatchesAndOptions_GiveClearErrors()
    {
        using var scope = NewDisposeScope();
        var student = TinyModels.Create("gpt2", seed: 7);
        var source = SampleSources.Create(AtkdSampleSource.Student, student, options: new SampleSourceOptions { MaxNewTokens = 3 });
        var plain = Make(Rows, Pad);
        var cross = new DistillationBatch { InputIds = plain.InputIds, AttentionMask = plain.AttentionMask, Labels = plain.Labels, TeacherInputIds = plain.InputIds, TeacherAttentionMask = plain.AttentionMask, TeacherLabels = plain.Labels };
        Assert.Contains("cross-tokenizer", Assert.Throws<InvalidOperationException>(() => source.Transform(cross, Context())).Message);

        var empty = new DistillationBatch { InputIds = plain.InputIds, AttentionMask = zeros_like(plain.AttentionMask), Labels = full_like(plain.Labels, DistillationBatch.IgnoreIndex) };
        Assert.Contains("row 0: the prompt is empty", Assert.Throws<InvalidOperationException>(() => source.Transform(empty, Context())).Message);

        var bad = Assert.Throws<ArgumentException>(() => SampleSources.Create(AtkdSampleSource.Student, student, options: new SampleSourceOptions { StudentTokenRatio = 1.5, MaxNewTokens = 0 }));
        Assert.Contains("StudentTokenRatio", bad.Message);
        Assert.Contains("MaxNewTokens", bad.Message);
        Assert.Contains("context window of 64", Assert.Throws<ArgumentException>(() => SampleSources.Create(AtkdSampleSource.Student, student, options: new SampleSourceOptions { MaxNewTokens = 64 })).Message);
        Assert.Contains("mix_token", Assert.Throws<ArgumentException>(() => AtkdSampleSourceNames.Parse("mix_tokens")).Message);
    }

    [Fact]
    public void PromptOnlyRows_GenerateFromTheWholeRow()
    {
        using var scope = NewDisposeScope();
        var student = TinyModels.Create("gpt2", seed: 7);
        var withResponses = Make(Rows, Pad);
        var promptOnly = Make([.. Rows.Select(r => (r.Prompt, Array.Empty<long>()))], Pad);
        var source = SampleSources.Create(AtkdSampleSource.Student, student, options: new SampleSourceOptions { MaxNewTokens = 4 });
        AssertSameBatch(source.Transform(withResponses, Context()), source.Transform(promptOnly, Context()));
    }

    [Fact]
    public void Names_RoundTripTheOfficialStrings_AndPresetsCarryTheOfficialConstants()
    {
        foreach (var source in Enum.GetValues<AtkdSampleSource>())
        {
            Assert.Equal(source, AtkdSampleSourceNames.Parse(AtkdSampleSourceNames.ToName(source)));
            Assert.Equal(source, AtkdSampleSourceNames.Parse(source.ToString()));
        }

        Assert.Equal(["gt", "teacher", "student", "mix_request_teacher", "mix_request_gt", "mix_token"], Enum.GetValues<AtkdSampleSource>().Select(AtkdSampleSourceNames.ToName));
        var mix = SampleSourceOptions.Atkd(AtkdSampleSource.MixRequestGt);
        Assert.Equal((0.5, 0.5, 256, false, 1.0), (mix.StudentRequestRatio, mix.StudentTokenRatio, mix.MaxNewTokens, mix.DoSample, mix.Temperature));
        Assert.Equal(128, SampleSourceOptions.Atkd(AtkdSampleSource.MixToken).MaxNewTokens);
        Assert.Equal(1.0, SampleSourceOptions.Atkd(AtkdSampleSource.Student).StudentRequestRatio);
        var gkd = SampleSourceOptions.Gkd();
        Assert.Equal((0.5, true, 0.9, 128), (gkd.StudentRequestRatio, gkd.DoSample, gkd.Temperature, gkd.MaxNewTokens));
    }

    private sealed class DescribedTeacher(TeacherInfo info) : ITeacher
    {
        public TeacherInfo Info => info;

        public TeacherOutput Infer(DistillationBatch batch, ObjectiveRequirements requirements) => throw new NotSupportedException();
    }
}
