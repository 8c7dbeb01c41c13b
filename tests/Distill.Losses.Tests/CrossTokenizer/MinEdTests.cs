using Distill.Data;
using Distill.Data.Alignment;
using Distill.Losses.CrossTokenizer;
using Distill.Tests.Shared;
using static TorchSharp.torch;

namespace Distill.Losses.Tests.CrossTokenizer;

/// <summary>
/// MinED against <c>min_edit_dis_kld.py</c> (goldens case "mined": two examples in DSKD's data layout with a "Ġ" student
/// vocabulary of 12 tokens and a "▁" teacher vocabulary of 14, a hand-written tea2stu map in which student id 11 has no
/// teacher counterpart and two teacher ids map to student id 2; T = 2, α = 0.5). The DTW is Distill.Data's
/// <see cref="MinEditDistance"/>, checked here against the official DTW's matches too.
/// </summary>
public sealed class MinEdTests
{
    [Fact]
    public void Compute_OfficialCase_MatchesAlignmentAlignedLogitsLossAndGradient()
    {
        using var scope = NewDisposeScope();
        using var folder = TestRuntime.CreateTempFolder();
        var map = GoldenMap(folder.Path);
        var ids = CrossTokGoldens.Long("mined.ids");
        var labels = CrossTokGoldens.Long("mined.labels");
        var tids = CrossTokGoldens.Long("mined.t_ids");
        var tlabels = CrossTokGoldens.Long("mined.t_labels");
        var zs = CrossTokGoldens.Float("mined.student_logits", requiresGrad: true);
        var zt = CrossTokGoldens.Float("mined.teacher_logits");

        // DTW parity: per student scored position, the matched teacher positions, as the official dtw() returns them.
        var svocab = CrossTokGoldens.Get("mined.student_vocab").EnumerateArray().Select(e => e.GetString()!).ToArray();
        var tvocab = CrossTokGoldens.Get("mined.teacher_vocab").EnumerateArray().Select(e => e.GetString()!).ToArray();
        var expected = CrossTokGoldens.Get("mined.alignments").EnumerateArray().ToArray();
        var alignments = new List<object>();
        for (var b = 0; b < 2; b++)
        {
            var s = Scored(ids[b], labels[b]);
            var t = Scored(tids[b], tlabels[b]);
            var matches = MinEditDistance.MatchTokens([.. t.Select(i => tvocab[i])], [.. s.Select(i => svocab[i])], "▁", "Ġ");
            var want = expected[b].EnumerateArray().Select(m => m.EnumerateArray().Select(x => x.GetInt32()).ToArray()).ToArray();
            Assert.Equal(want.Length, matches.Count);
            for (var j = 0; j < want.Length; j++)
            {
                Assert.Equal(want[j], matches[j]);
            }

            // DSKD keeps one-to-one matches only; the objective re-checks the vocabulary-map consistency itself.
            alignments.Add(new MinEdAlignment([.. matches.Select(m => m.Count == 1 ? m[0] : -1)]));
        }

        var objective = new MinEdObjective(new MinEdOptions { Temperature = CrossTokGoldens.Scalar("mined.temperature"), Alpha = CrossTokGoldens.Scalar("mined.alpha") }, map);
        var batch = new DistillationBatch
        {
            InputIds = ids, AttentionMask = ones_like(ids), Labels = labels,
            TeacherInputIds = tids, TeacherAttentionMask = ones_like(tids), TeacherLabels = tlabels,
            Alignment = alignments,
        };
        var (aligned, alignedRows) = objective.AlignTeacherLogits(zs, zt, ids, labels, tids, tlabels, [.. alignments.Cast<MinEdAlignment>().Select(a => a.StudentToTeacher)]);
        CrossTokGoldens.AssertClose("mined.aligned_teacher_logits", aligned, rtol: 1e-6, atol: 1e-6);
        Assert.InRange(alignedRows.item<float>(), 1, 12); // some rows aligned, some one-hot ("s"→"▁sat", "Ġdog"→["▁do","g"])

        var result = objective.Compute(Context(batch, zs, zt));
        result.LossSum.backward();

        CrossTokGoldens.AssertScalar("mined.loss", result.LossSum);
        CrossTokGoldens.AssertScalar("mined.ce", result.Metrics["ce"]);
        CrossTokGoldens.AssertScalar("mined.kd", result.Metrics["kd"]);
        Assert.Equal(13, result.ScoredTokens.item<long>()); // 9 + 4 scored student positions
        CrossTokGoldens.AssertClose("mined.grad.student_logits", zs.grad!);
    }

    [Fact]
    public void Compute_WithBundledTokenizers_AlignsOnTheFlyLikePrecomputedAlignments()
    {
        using var scope = NewDisposeScope();
        var student = BundledData.TokenizerA(); // byte-level tokenizer
        var teacher = BundledData.TokenizerB(); // trained BPE (512): genuinely different tokenisations
        var map = VocabularyMap.Build(student, teacher);
        const string prompt = "Question: what is the capital of France?\nAnswer:";
        const string response = " The capital of France is Paris.";
        var (ids, labels) = Layout(student, prompt, response);
        var (tids, tlabels) = Layout(teacher, prompt, response);
        var zs = randn(1, ids.shape[1], student.VocabSize, generator: new Generator(3));
        var zt = randn(1, tids.shape[1], teacher.VocabSize, generator: new Generator(4)) * 3;
        var batch = new DistillationBatch
        {
            InputIds = ids, AttentionMask = ones_like(ids), Labels = labels,
            TeacherInputIds = tids, TeacherAttentionMask = ones_like(tids), TeacherLabels = tlabels,
        };

        var onTheFly = new MinEdObjective(null, map, student, teacher).Compute(Context(batch, zs, zt));

        var precomputed = MinEditDistance.AlignStudentToTeacher(student, teacher, Scored(ids[0], labels[0]), Scored(tids[0], tlabels[0]), map);
        var withAlignment = new DistillationBatch
        {
            InputIds = ids, AttentionMask = ones_like(ids), Labels = labels,
            TeacherInputIds = tids, TeacherAttentionMask = ones_like(tids), TeacherLabels = tlabels,
            Alignment = [new MinEdAlignment(precomputed)],
        };
        var fromBatch = new MinEdObjective(null, map).Compute(Context(withAlignment, zs, zt));

        Assert.Equal(fromBatch.LossSum.item<float>(), onTheFly.LossSum.item<float>(), 5);
        Assert.True(onTheFly.Metrics["aligned_rows"].item<float>() > 0, "identical words must align across the two tokenizers");
        Assert.True(float.IsFinite(onTheFly.LossSum.item<float>()));
    }

    [Fact]
    public void Compute_NoTokenizersAndNoAlignment_ThrowsSayingWhatIsMissing()
    {
        using var scope = NewDisposeScope();
        using var folder = TestRuntime.CreateTempFolder();
        var ids = CrossTokGoldens.Long("mined.ids");
        var tids = CrossTokGoldens.Long("mined.t_ids");
        var batch = new DistillationBatch
        {
            InputIds = ids, AttentionMask = ones_like(ids), Labels = CrossTokGoldens.Long("mined.labels"),
            TeacherInputIds = tids, TeacherAttentionMask = ones_like(tids), TeacherLabels = CrossTokGoldens.Long("mined.t_labels"),
        };

        var ex = Assert.Throws<InvalidOperationException>(() => new MinEdObjective(null, GoldenMap(folder.Path)).Compute(Context(batch, CrossTokGoldens.Float("mined.student_logits"), CrossTokGoldens.Float("mined.teacher_logits"))));
        Assert.Contains("MinEdAlignment", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Compute_BatchWithoutTeacherTokens_Throws()
    {
        using var scope = NewDisposeScope();
        using var folder = TestRuntime.CreateTempFolder();
        var ids = CrossTokGoldens.Long("mined.ids");
        var batch = new DistillationBatch { InputIds = ids, AttentionMask = ones_like(ids), Labels = CrossTokGoldens.Long("mined.labels") };

        var ex = Assert.Throws<InvalidOperationException>(() => new MinEdObjective(null, GoldenMap(folder.Path)).Compute(Context(batch, CrossTokGoldens.Float("mined.student_logits"), CrossTokGoldens.Float("mined.teacher_logits"))));
        Assert.Contains("'min_ed'", ex.Message, StringComparison.Ordinal);
        Assert.Contains("TeacherInputIds", ex.Message, StringComparison.Ordinal);
    }

    private static VocabularyMap GoldenMap(string folder)
    {
        var path = Path.Combine(folder, "tea2stu_id_mapping.json");
        File.WriteAllText(path, CrossTokGoldens.Get("mined.tea2stu").GetRawText());
        return VocabularyMap.Load(path, teacherVocabSize: 14, studentVocabSize: 12);
    }

    private static int[] Scored(Tensor ids, Tensor labels)
    {
        var i = ids.data<long>().ToArray();
        var l = labels.data<long>().ToArray();
        return [.. i.Where((_, k) => l[k] != -100).Select(v => (int)v)];
    }

    /// <summary>DSKD's layout: full = prompt + response + EOS; input = full[..^1]; labels = full[1..] with the prompt part −100.</summary>
    private static (Tensor Ids, Tensor Labels) Layout(HfTokenizer tokenizer, string prompt, string response)
    {
        var p = tokenizer.EncodeToIds(prompt, addSpecialTokens: false);
        var r = tokenizer.EncodeToIds(response, addSpecialTokens: false);
        var full = p.Concat(r).Append(tokenizer.EosTokenId!.Value).Select(v => (long)v).ToArray();
        var input = full[..^1];
        var labels = full[1..];
        for (var k = 0; k < p.Count - 1; k++)
        {
            labels[k] = -100;
        }

        return (tensor(input, dtype: ScalarType.Int64).unsqueeze(0), tensor(labels, dtype: ScalarType.Int64).unsqueeze(0));
    }

    private static ObjectiveContext Context(DistillationBatch batch, Tensor zs, Tensor zt) => new()
    {
        Batch = batch,
        Student = new CausalLMOutput(zs, null, null),
        Teacher = new TeacherOutput { Logits = zt },
        StudentModel = new FakeCausalLM(randn(zs.shape[^1], 3)),
    };
}
