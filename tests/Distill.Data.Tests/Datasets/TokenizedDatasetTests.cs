using TorchSharp;

namespace Distill.Data.Tests.Datasets;

public sealed class TokenizedDatasetTests
{
    // Bundled tokenizer A: id = byte value for every byte, <|endoftext|> = 256 (EOS and pad). So 'H'=72, 'i'=105,
    // ':'=58, ' '=32, 'o'=111, 'k'=107, 'A'=65, 'b'=98.
    private static readonly HfTokenizer Bytes = BundledData.TokenizerA();

    [Fact]
    public void Create_DskdLayout_ShiftsLabelsAndMasksPrompt()
    {
        // full = prompt [72,105,58] + response [32,111,107] + EOS [256]; P = 3, n = 7.
        // input = full[0..6]; label[t] = full[t+1] for t ≥ P−1 = 2, −100 before.
        var example = TokenizedExample.Create(Bytes, new TextExample("Hi:", " ok"), maxLength: 512, maxPromptLength: 256);
        Assert.Equal([72, 105, 58, 32, 111, 107, 256], example.Tokens);
        Assert.Equal(3, example.PromptLength);
        Assert.Equal(6, example.InputLength);
        Assert.Equal(4, example.TargetCount);
        Assert.Equal("Hi: ok", example.Text);
        Assert.Equal(new TokenSpan(3, 4), example.Offsets[3]); // the response's first token sits after the prompt
        Assert.Equal(new TokenSpan(6, 6), example.Offsets[6]); // EOS: empty span at the end

        var dataset = TokenizedDataset.Create([new TextExample("Hi:", " ok")], Bytes, teacher: null);
        using var batch = dataset.Collate([0]);
        Assert.Equal(new long[] { 72, 105, 58, 32, 111, 107 }, batch.InputIds.data<long>().ToArray());
        Assert.Equal(new long[] { -100, -100, 32, 111, 107, 256 }, batch.Labels.data<long>().ToArray());
        Assert.Equal(4, batch.CountValidTokens());
    }

    [Fact]
    public void Create_Truncation_CutsPromptHeadAndResponseTail()
    {
        // maxLength 5: full = [72,105,58,32,111] (EOS lost, as DSKD); labels from t = 2: [32, 111].
        var cut = TokenizedExample.Create(Bytes, new TextExample("Hi:", " ok"), maxLength: 5, maxPromptLength: 256);
        Assert.Equal([72, 105, 58, 32, 111], cut.Tokens);
        Assert.Equal(2, cut.TargetCount);

        // maxPromptLength 2 keeps the FIRST two prompt tokens: [72,105] + [32,111,107] + [256].
        var shortPrompt = TokenizedExample.Create(Bytes, new TextExample("Hi:", " ok"), maxLength: 512, maxPromptLength: 2);
        Assert.Equal([72, 105, 32, 111, 107, 256], shortPrompt.Tokens);
        Assert.Equal(2, shortPrompt.PromptLength);

        // A prompt that fills maxLength leaves no target: the dataset drops the example and counts it.
        var dataset = TokenizedDataset.Create([new TextExample("Hi:", " ok"), new TextExample("Hello there", " x")], Bytes, null, maxLength: 4, maxPromptLength: 256);
        Assert.Equal(1, dataset.Count);
        Assert.Equal(1, dataset.SkippedCount);
    }

    [Fact]
    public void Create_UldFormats_AddBosToStudentAndNoEosToTeacher()
    {
        // ULD (llm-distillation): student = BOS + prompt, " " + answer + EOS; teacher answer without EOS.
        // 'Q'=81, ':'=58, ' '=32, 'a'=97; BOS = EOS = 256 in the bundled tokenizers' config.
        var example = new TextExample("Q:", " a");
        var student = TokenizedExample.Create(Bytes, example, 512, 256, SequenceFormat.UldStudent);
        Assert.Equal([256, 81, 58, 32, 97, 256], student.Tokens);
        Assert.Equal(3, student.PromptLength);
        Assert.Equal(3, student.TargetCount); // ' ', 'a', EOS
        Assert.Equal(new TokenSpan(0, 0), student.Offsets[0]);

        var teacher = TokenizedExample.Create(Bytes, example, 512, 256, SequenceFormat.UldTeacher);
        Assert.Equal([81, 58, 32, 97], teacher.Tokens);
        Assert.Equal(2, teacher.TargetCount);

        // maxPromptLength counts the BOS: 2 keeps BOS + 'Q'.
        Assert.Equal([256, 81, 32, 97, 256], TokenizedExample.Create(Bytes, example, 512, 2, SequenceFormat.UldStudent).Tokens);

        var dataset = TokenizedDataset.Create([example], Bytes, BundledData.TokenizerB(), 512, 256, SequenceFormat.UldStudent, SequenceFormat.UldTeacher);
        using var batch = dataset.Collate([0]);
        Assert.Equal(new long[] { -100, -100, 32, 97, 256 }, batch.Labels.data<long>().ToArray());
        Assert.Equal(dataset.TeacherExamples![0].TargetCount, batch.TeacherLabels!.ne(DistillationBatch.IgnoreIndex).sum().item<long>());
        Assert.DoesNotContain(511L, batch.TeacherInputIds!.data<long>().ToArray()); // no EOS on the teacher side
    }

    [Fact]
    public void Collate_RightAndLeftPadding_PlaceTokensMaskLabelsPositions()
    {
        // Second example: full = [65,58,32,98,256], input [65,58,32,98], labels from t = 1: [-100,32,98,256].
        var dataset = TokenizedDataset.Create([new TextExample("Hi:", " ok"), new TextExample("A:", " b")], Bytes, null);
        using (var right = dataset.Collate([1, 0], PaddingSide.Right))
        {
            Assert.Equal(new long[] { 2, 6 }, right.InputIds.shape);
            Assert.Equal(new long[] { 65, 58, 32, 98, 256, 256, 72, 105, 58, 32, 111, 107 }, right.InputIds.data<long>().ToArray());
            Assert.Equal(new long[] { 1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1 }, right.AttentionMask.data<long>().ToArray());
            Assert.Equal(new long[] { -100, 32, 98, 256, -100, -100, -100, -100, 32, 111, 107, 256 }, right.Labels.data<long>().ToArray());
            Assert.Equal(new long[] { 0, 1, 2, 3, 0, 0, 0, 1, 2, 3, 4, 5 }, right.PositionIds!.data<long>().ToArray());
            Assert.False(right.HasTeacherTokens);
        }

        using var left = dataset.Collate([1], PaddingSide.Left, padToLength: 6);
        Assert.Equal(new long[] { 256, 256, 65, 58, 32, 98 }, left.InputIds.data<long>().ToArray());
        Assert.Equal(new long[] { 0, 0, 1, 1, 1, 1 }, left.AttentionMask.data<long>().ToArray());
        Assert.Equal(new long[] { -100, -100, -100, 32, 98, 256 }, left.Labels.data<long>().ToArray());
        Assert.Equal(new long[] { 0, 0, 0, 1, 2, 3 }, left.PositionIds!.data<long>().ToArray());
    }

    [Fact]
    public void Collate_CrossTokenizer_AddsTeacherTensorsAndAlignment()
    {
        var examples = BundledData.Load(BundledSplit.Dev).Take(4).Select(InstructionTemplate.Compact.Apply).ToList();
        var dataset = TokenizedDataset.Create(examples, Bytes, BundledData.TokenizerB());
        using var batch = dataset.Collate([0, 1, 2, 3]);
        Assert.True(batch.HasTeacherTokens);
        Assert.Equal(4, batch.TeacherInputIds!.shape[0]);
        Assert.True(batch.TeacherInputIds.shape[1] < batch.InputIds.shape[1]); // BPE needs fewer tokens than bytes
        Assert.Equal(4, batch.SpanAlignments!.Count);
        Assert.Equal([0L, 1, 2, 3], batch.ExampleIds);
        Assert.Null(batch.MinEdAlignments); // only after WithMinEdAlignments
        for (var b = 0; b < 4; b++)
        {
            var alignment = batch.SpanAlignments[b];
            Assert.Equal(dataset.StudentExamples[b].Text, dataset.TeacherExamples![b].Text);
            Assert.Equal(AlignmentKind.OneToOne, alignment.Groups[^1].Kind); // EOS ↔ EOS
            Assert.Equal(0, alignment.StudentColumnOffset); // right padding
            var teacherTargets = batch.TeacherLabels![b].ne(DistillationBatch.IgnoreIndex).sum().item<long>();
            Assert.Equal(dataset.TeacherExamples[b].TargetCount, teacherTargets);
        }

        // The response is the same text on both sides: " " + output, then EOS.
        Assert.StartsWith(" ", examples[0].Response, StringComparison.Ordinal);
    }

    [Fact]
    public void CollatePrompts_LeftPadsPromptsWithReferences()
    {
        var dataset = TokenizedDataset.Create([new TextExample("Hi:", " ok"), new TextExample("A:", " b") { References = [" b", " B"] }], Bytes, null);
        using var prompts = dataset.CollatePrompts([0, 1]);
        Assert.Equal(new long[] { 72, 105, 58, 256, 65, 58 }, prompts.InputIds.data<long>().ToArray());
        Assert.Equal(new long[] { 1, 1, 1, 0, 1, 1 }, prompts.AttentionMask.data<long>().ToArray());
        Assert.Equal(new long[] { 0, 1, 2, 0, 0, 1 }, prompts.PositionIds.data<long>().ToArray());
        Assert.Equal([" b", " B"], prompts.References[1]);
    }

    [Fact]
    public void GetBatch_ManySteps_KeepsLiveTensorCountFlat()
    {
        var examples = BundledData.Load(BundledSplit.Dev).Select(InstructionTemplate.Compact.Apply).ToList();
        var source = new DistillationBatchSource(TokenizedDataset.Create(examples, Bytes, BundledData.TokenizerB()), new BatchSampler(examples.Count, 8, seed: 1));
        long? baseline = null;
        for (var step = 0; step < 10; step++)
        {
            using (var scope = torch.NewDisposeScope())
            {
                var batch = source.GetBatch(0, step);
                Assert.Equal(8, batch.BatchSize);
            }

            var live = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
            baseline ??= live;
            Assert.Equal(baseline, live);
        }
    }
}
