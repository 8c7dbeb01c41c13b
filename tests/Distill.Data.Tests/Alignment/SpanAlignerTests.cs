using Distill.Data.Alignment;
using Distill.Data.Tests.Tokenization;

namespace Distill.Data.Tests.Alignment;

public sealed class SpanAlignerTests
{
    [Fact]
    public void Align_HandExample_GivesOneToOneOneToManyManyToOne()
    {
        // Text "abcdef": student [ab][c][def], teacher [ab][cd][ef] is not a partition match at c|d, so:
        // group 1: ab ↔ ab (1:1); group 2: student c,def ↔ teacher cd,ef (2:2).
        TokenSpan[] student = [new(0, 2), new(2, 3), new(3, 6)];
        TokenSpan[] teacher = [new(0, 2), new(2, 4), new(4, 6)];
        var groups = SpanAligner.Align(student, teacher);
        Assert.Equal([new AlignedGroup(0, 1, 0, 1), new AlignedGroup(1, 3, 1, 3)], groups);
        Assert.Equal(AlignmentKind.OneToOne, groups[0].Kind);
        Assert.Equal(AlignmentKind.ManyToMany, groups[1].Kind);

        // student [abc][def] vs teacher [a][bc][def] + EOS on both: 1:2, 1:1, EOS 1:1.
        groups = SpanAligner.Align([new(0, 3), new(3, 6), new(6, 6)], [new(0, 1), new(1, 3), new(3, 6), new(6, 6)]);
        Assert.Equal([new AlignedGroup(0, 1, 0, 2), new AlignedGroup(1, 2, 2, 3), new AlignedGroup(2, 3, 3, 4)], groups);
        Assert.Equal(AlignmentKind.OneToMany, groups[0].Kind);

        // many-to-one and an unmatched BOS on the teacher side.
        groups = SpanAligner.Align([new(0, 1), new(1, 2)], [new(0, 0), new(0, 2)]);
        Assert.Equal([new AlignedGroup(0, 0, 0, 1), new AlignedGroup(0, 2, 1, 2)], groups);
        Assert.Equal(AlignmentKind.Unmatched, groups[0].Kind);
        Assert.Equal(AlignmentKind.ManyToOne, groups[1].Kind);
    }

    [Theory]
    [InlineData("gpt2", "cl100k")]
    [InlineData("gpt2", "o200k")]
    [InlineData("cl100k", "o200k")]
    public void Align_RealTokenizerPairs_PartitionBothSidesOnVariedText(string studentName, string teacherName)
    {
        var student = HfTokenizerTests.Load(studentName).Hf;
        var teacher = HfTokenizerTests.Load(teacherName).Hf;
        var kinds = new HashSet<AlignmentKind>();
        foreach (var text in HfTokenizerTests.Texts.Where(t => t.Length > 0))
        {
            var s = student.Encode(text, false);
            var t = teacher.Encode(text, false);
            var groups = SpanAligner.Align(s.Offsets, t.Offsets);

            // Every token of both sides lies in exactly one group, groups are contiguous and in order.
            Assert.Equal(0, groups[0].StudentStart);
            Assert.Equal(0, groups[0].TeacherStart);
            for (var g = 1; g < groups.Count; g++)
            {
                Assert.Equal(groups[g - 1].StudentEnd, groups[g].StudentStart);
                Assert.Equal(groups[g - 1].TeacherEnd, groups[g].TeacherStart);
            }

            Assert.Equal(s.Count, groups[^1].StudentEnd);
            Assert.Equal(t.Count, groups[^1].TeacherEnd);

            // Both sides of a group cover the same characters, so they decode to the same text.
            foreach (var group in groups)
            {
                var sText = student.Decode(s.Ids.Skip(group.StudentStart).Take(group.StudentCount), false);
                var tText = teacher.Decode(t.Ids.Skip(group.TeacherStart).Take(group.TeacherCount), false);
                Assert.Equal(sText, tText);
                kinds.Add(group.Kind);
            }
        }

        Assert.Contains(AlignmentKind.OneToOne, kinds);
        Assert.True(kinds.Contains(AlignmentKind.OneToMany) || kinds.Contains(AlignmentKind.ManyToOne));
    }
}

public sealed class ExampleTokenizationsTests
{
    [Fact]
    public void AlignScoredPositions_BytesStudentBpeTeacher_AlignsSingleCharacterTokens()
    {
        // Student = bundled bytes tokenizer, teacher = bundled BPE. Prompt "Count the letters: sun\nAnswer:", response " 3".
        var student = BundledData.TokenizerA();
        var teacher = BundledData.TokenizerB();
        var map = VocabularyMap.Build(student, teacher);
        var example = new TextExample("Count the letters: sun\nAnswer:", " 3");
        var dataset = TokenizedDataset.Create([example], student, teacher);
        using var batch = dataset.Collate([0], PaddingSide.Left, padToLength: 40);
        var alignment = new ExampleTokenizations(dataset.StudentExamples[0], dataset.TeacherExamples![0], 40 - dataset.StudentExamples[0].InputLength, 40 - dataset.TeacherExamples[0].InputLength);
        Assert.Equal(alignment.Groups, batch.SpanAlignments![0].Groups);
        Assert.Equal(alignment.StudentColumnOffset, batch.SpanAlignments[0].StudentColumnOffset);
        Assert.Equal(alignment.TeacherColumnOffset, batch.SpanAlignments[0].TeacherColumnOffset);
        var result = alignment.AlignScoredPositions(student, teacher, map);

        // Scored student positions: the last prompt token ':' and the response ' ', '3' → 3 columns, ending at the last column.
        Assert.Equal(alignment.Student.TargetCount, result.StudentColumns.Count);
        Assert.Equal(39, result.StudentColumns[^1]);
        var labels = batch.Labels[0].data<long>().ToArray();
        Assert.All(result.StudentColumns, c => Assert.NotEqual(DistillationBatch.IgnoreIndex, labels[c]));

        // Wherever a teacher column is given, the teacher input token maps to the student input token there.
        var studentIds = batch.InputIds[0].data<long>().ToArray();
        var teacherIds = batch.TeacherInputIds![0].data<long>().ToArray();
        for (var k = 0; k < result.StudentColumns.Count; k++)
        {
            if (result.TeacherColumns[k] >= 0)
            {
                Assert.Equal(studentIds[result.StudentColumns[k]], map.TeacherToStudent((int)teacherIds[result.TeacherColumns[k]]));
            }
        }

        // ':' is a single byte in both vocabularies, so the first scored position is aligned.
        Assert.True(result.TeacherColumns[0] >= 0);
    }

    [Fact]
    public void WithMinEdAlignments_BatchCarriesWhatMinEdComputesFromTheBatch_CachedPerExample()
    {
        // MinED (DSKD's min_edit_dis_kld) aligns the input ids at the scored positions (labels ≠ −100) of both sides; the
        // dataset must give exactly that, whatever the padding side, so that min_ed can skip its own DTW.
        var student = BundledData.TokenizerA();
        var teacher = BundledData.TokenizerB();
        var map = VocabularyMap.Build(student, teacher);
        var examples = BundledData.Load(BundledSplit.Dev).Take(3).Select(InstructionTemplate.Compact.Apply).ToList();
        var dataset = TokenizedDataset.Create(examples, student, teacher).WithMinEdAlignments(map);
        Assert.True(dataset.HasMinEdAlignments);
        foreach (var side in new[] { PaddingSide.Right, PaddingSide.Left })
        {
            using var batch = dataset.Collate([2, 0, 1], side);
            Assert.Equal([2L, 0, 1], batch.ExampleIds);
            for (var b = 0; b < 3; b++)
            {
                int[] Scored(TorchSharp.torch.Tensor ids, TorchSharp.torch.Tensor labels)
                {
                    var i = ids.data<long>().ToArray();
                    var l = labels.data<long>().ToArray();
                    return [.. i.Where((_, k) => l[k] != DistillationBatch.IgnoreIndex).Select(v => (int)v)];
                }

                var expected = MinEditDistance.AlignStudentToTeacher(student, teacher, Scored(batch.InputIds[b], batch.Labels[b]), Scored(batch.TeacherInputIds![b], batch.TeacherLabels![b]), map);
                Assert.Equal(expected, batch.MinEdAlignments![b].StudentToTeacher);
                Assert.Contains(expected, k => k >= 0);
            }
        }

        Assert.Same(dataset.MinEdAlignmentOf(1), dataset.MinEdAlignmentOf(1)); // computed once
        Assert.Throws<InvalidOperationException>(() => TokenizedDataset.Create(examples, student, null).WithMinEdAlignments(map));
        Assert.Throws<InvalidOperationException>(() => TokenizedDataset.Create(examples, student, teacher).MinEdAlignmentOf(0));
    }
}
