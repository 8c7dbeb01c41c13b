using static TorchSharp.torch;

namespace Distill.Losses.Tests;

/// <summary>
/// The sparse chunked objectives (<c>sparse_*_chunked</c>: student hidden states × lm_head chunk by chunk against top-k
/// teacher rows) equal the full-logits sparse objectives: loss, dL/dhidden, dL/dW and dL/db within 1e-5 relative in fp32,
/// with uneven chunks (N = 2·5 = 10 rows, chunk 3), K &lt; V and K = V, both tail handlings, and an ignored position whose
/// cached row holds garbage (−inf log-probs, NaN tail). Sparse forward KL runs the closed-form gradient
/// (<see cref="Kernels.SparseChunkDivergence"/>) except at α &lt; 1 with T ≠ 1, where the kernel differentiates the chunk
/// with autograd; the other divergences always use autograd.
/// </summary>
[Collection("Sequential")]
public sealed class SparseChunkedObjectiveTests
{
    private const long V = 13;
    private const long H = 6;

    public static TheoryData<string, SparseTailHandling, long, double, double> Cases()
    {
        var data = new TheoryData<string, SparseTailHandling, long, double, double>();
        foreach (var name in SparseKdObjective.Names)
        {
            foreach (var tail in new[] { SparseTailHandling.Renormalize, SparseTailHandling.TailBucket })
            {
                foreach (var k in new[] { 4L, V })
                {
                    data.Add(name, tail, k, 0.5, 1.0);
                    data.Add(name, tail, k, 1.0, 1.7);
                }
            }
        }

        // Forward KL's remaining closed-form branch (α < 1, T = 1 is above) and its autograd fallback (α < 1, T ≠ 1).
        data.Add(SparseKdObjective.ForwardKlName, SparseTailHandling.TailBucket, 4, 0.0, 1.0);
        data.Add(SparseKdObjective.ForwardKlName, SparseTailHandling.TailBucket, 4, 0.4, 1.3);
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Compute_SparseChunked_EqualsSparseLossAndGradients(string name, SparseTailHandling tail, long k, double alpha, double temperature)
    {
        using var scope = NewDisposeScope();
        Action<LossesOptions> configure = o =>
        {
            o.ChunkSize = 3;
            o.Sparse.TailHandling = tail;
            o.Sparse.KdRate = alpha;
            o.Sparse.Temperature = temperature;
            o.Sparse.Beta = 0.3;
        };
        var student = new TinyCausalLM(seed: 31, vocab: V, hidden: H, withBias: true);
        var labels = TestData.Labels(32, 2, 5, V, (0, 0), (1, 4));
        var teacher = TopK(TestData.Logits(33, 2, 5, V, 3.0), k);
        var naive = Run(name, chunked: false, student, teacher, labels, configure);
        var fused = Run(name, chunked: true, student, teacher, labels, configure);
        Assert.Equal(naive.Count, fused.Count);
        Assert.Equal(naive.Normalizer, fused.Normalizer);
        Assert.True(double.IsFinite(naive.Loss), $"naive loss {naive.Loss}");
        GoldenTests.AssertClose(naive.Loss, fused.Loss, 1e-5);
        AssertRel(naive.GradH, fused.GradH, "hidden");
        AssertRel(naive.GradW, fused.GradW, "lm_head weight");
        AssertRel(naive.GradB, fused.GradB, "lm_head bias");
    }

    /// <summary>
    /// A student so peaked that its tail bucket underflows float32 (logit 100 on the teacher's only top-1 entry, 0 elsewhere:
    /// q_tail = 4·e^−100 ≈ 1.5e−43, a denormal) must not go through the closed form's Σ q: the kernel falls back to
    /// autograd of the exact log-domain formula, which keeps log q_tail = log 4 − 100 finite (the KL is then ≈ P_t·(log P_t + 98.6)).
    /// </summary>
    [Fact]
    public void Compute_StudentTailThatWouldUnderflow_MatchesTheExactFormula()
    {
        using var scope = NewDisposeScope();
        const long v = 5;
        var student = new TinyCausalLM(seed: 34, vocab: v, hidden: 2);
        using (no_grad())
        {
            student.LmHeadWeight.copy_(tensor(new float[] { 100, 0, 0, 0, 0, 0, 0, 0, 0, 0 }).reshape(v, 2));
        }

        var labels = tensor(new long[] { 0, 1 }).reshape(1, 2);
        var teacher = new TeacherOutput
        {
            TopKIndices = tensor(new long[] { 0, 0 }).reshape(1, 2, 1),
            TopKLogProbs = tensor(new[] { (float)Math.Log(0.9), (float)Math.Log(0.6) }).reshape(1, 2, 1),
            TopKLogTailMass = tensor(new[] { (float)Math.Log(0.1), (float)Math.Log(0.4) }).reshape(1, 2),
        };
        var hidden = tensor(new float[] { 1, 0, 1, 0.5f }).reshape(1, 2, 2);
        Action<LossesOptions> configure = o =>
        {
            o.Sparse.TailHandling = SparseTailHandling.TailBucket;
            o.Sparse.KdRate = 1.0;
        };
        var naive = Run(SparseKdObjective.ForwardKlName, chunked: false, student, teacher, labels, configure, hidden);
        var fused = Run(SparseKdObjective.ForwardKlName, chunked: true, student, teacher, labels, configure, hidden);
        // Student buckets of both rows: log q = [−log(1 + 4e^−100) ≈ 0, log 4 − 100]. Row 0: P = [0.9, 0.1]; row 1: [0.6, 0.4].
        static double Row(double p) => (p * Math.Log(p)) + ((1 - p) * (Math.Log(1 - p) - Math.Log(4) + 100));
        GoldenTests.AssertClose(Row(0.9) + Row(0.6), naive.Loss, 1e-5);                  // 9.536 + 38.772
        GoldenTests.AssertClose(naive.Loss, fused.Loss, 1e-5);
        AssertRel(naive.GradH, fused.GradH, "hidden");
        AssertRel(naive.GradW, fused.GradW, "lm_head weight");
    }

    [Fact]
    public void Create_SparseChunked_ReadsTopKAndHiddenStatesOnly()
    {
        var objective = DistillObjectives.Create("sparse_forward_kl_chunked");
        Assert.Equal("sparse_forward_kl_chunked", objective.Name);
        var r = objective.Requirements;
        Assert.True(r.NeedsTeacher && r.AcceptsSparseTopK && r.NeedsStudentHiddenStates && r.RequiresSameVocabulary);
        Assert.False(r.NeedsTeacherLogits || r.NeedsTeacherHiddenStates || r.NeedsStudentLogits);
        objective.Validate(new ObjectiveSetup { StudentVocabularySize = 10, Teacher = new TeacherInfo { Capabilities = TeacherCapabilities.SparseTopK } });
        var dense = Assert.Throws<InvalidOperationException>(() => objective.Validate(new ObjectiveSetup { StudentVocabularySize = 10, Teacher = new TeacherInfo() }));
        Assert.Contains("sparse_forward_kl_chunked", dense.Message, StringComparison.Ordinal);
        Assert.Contains("sparse top-k", dense.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Compute_SparseChunkedWithBadTeacher_NamesTheProblem()
    {
        using var scope = NewDisposeScope();
        var model = new TinyCausalLM(seed: 35, vocab: V, hidden: H);
        var labels = TestData.Labels(36, 2, 5, V);
        var good = TopK(TestData.Logits(37, 2, 5, V), 4);
        ObjectiveContext Ctx(TeacherOutput t) => new()
        {
            Batch = TestData.Batch(labels),
            Student = new CausalLMOutput(null, randn(2, 5, H), null),
            Teacher = t,
            StudentModel = model,
        };
        var objective = TestData.Create("sparse_reverse_kl_chunked", o => o.Sparse.TailHandling = SparseTailHandling.TailBucket);
        var noTail = Assert.Throws<ArgumentException>(() => objective.Compute(Ctx(new TeacherOutput { TopKIndices = good.TopKIndices, TopKLogProbs = good.TopKLogProbs })));
        Assert.Contains("TopKLogTailMass", noTail.Message, StringComparison.Ordinal);
        var shape = Assert.Throws<ArgumentException>(() => objective.Compute(Ctx(new TeacherOutput
        {
            TopKIndices = good.TopKIndices!.narrow(1, 0, 4),
            TopKLogProbs = good.TopKLogProbs!.narrow(1, 0, 4),
            TopKLogTailMass = good.TopKLogTailMass,
        })));
        Assert.Contains("[2, 4, 4]", shape.Message, StringComparison.Ordinal);
        var dense = Assert.Throws<InvalidOperationException>(() => objective.Compute(Ctx(new TeacherOutput { Logits = TestData.Logits(38, 2, 5, V) })));
        Assert.Contains("TopKIndices", dense.Message, StringComparison.Ordinal);
    }

    /// <summary>The teacher's top-k at temperature 1 as a cache stores it, with garbage in the ignored position (0, 0).</summary>
    internal static TeacherOutput TopK(Tensor teacherLogits, long k)
    {
        var logP = teacherLogits.log_softmax(-1);
        var (values, ids) = logP.topk((int)k);
        // log Σ over the entries outside the top-k (−inf when K = V).
        var inTopK = zeros_like(logP, dtype: ScalarType.Bool).scatter(-1, ids, ones_like(ids, dtype: ScalarType.Bool));
        var tail = logP.masked_fill(inTopK, double.NegativeInfinity).logsumexp(-1);
        values = values.clone();
        tail = tail.clone();
        values[0, 0] = full(k, double.NegativeInfinity);
        tail[0, 0] = double.NaN;
        return new TeacherOutput { TopKIndices = ids, TopKLogProbs = values, TopKLogTailMass = tail };
    }

    private static (double Loss, Tensor GradH, Tensor GradW, Tensor GradB, long Count, float Normalizer) Run(
        string name, bool chunked, TinyCausalLM student, TeacherOutput teacher, Tensor labels, Action<LossesOptions> configure, Tensor? hidden = null)
    {
        student.Module.zero_grad();
        var h = (hidden?.clone() ?? (randn(2, 5, H, generator: new Generator(39)) * 0.7)).requires_grad_(true);
        var objective = TestData.Create(chunked ? name + ObjectiveNames.ChunkedSuffix : name, configure);
        var r = objective.Compute(new ObjectiveContext
        {
            Batch = TestData.Batch(labels),
            Student = chunked
                ? new CausalLMOutput(null, h, null)
                : new CausalLMOutput(nn.functional.linear(h, student.LmHeadWeight, student.LmHeadBias), null, null),
            Teacher = teacher,
            StudentModel = student,
        });
        r.LossSum.backward();
        var gradB = student.LmHeadBias?.grad?.clone() ?? zeros(1);
        return (TestData.Value(r.LossSum), h.grad!, student.LmHeadWeight.grad!.clone(), gradB, r.ScoredTokens.item<long>(), r.Normalizer.item<float>());
    }

    private static void AssertRel(Tensor expected, Tensor actual, string what)
    {
        var err = (actual - expected).abs().max().item<float>() / Math.Max(expected.abs().max().item<float>(), 1e-12f);
        Assert.True(err <= 1e-5, $"{what}: max |Δ| / max |ref| = {err:E2}; expected {expected.ToString(TorchSharp.TensorStringStyle.Julia)} actual {actual.ToString(TorchSharp.TensorStringStyle.Julia)}");
    }
}
