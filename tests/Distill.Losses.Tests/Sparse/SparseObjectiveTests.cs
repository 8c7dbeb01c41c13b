using Microsoft.Extensions.DependencyInjection;
using static TorchSharp.torch;

namespace Distill.Losses.Tests;

/// <summary>
/// Sparse top-k objectives: with K = V they equal the dense objectives (loss and gradient, both tail handlings); with
/// K &lt; V they equal hand computations; bad inputs give clear errors.
/// </summary>
public sealed class SparseObjectiveTests
{
    /// <summary>The dense twin of each sparse objective, with options that make the two compute the same thing.</summary>
    public static TheoryData<string, string, SparseTailHandling> DenseTwins()
    {
        var data = new TheoryData<string, string, SparseTailHandling>();
        foreach (var tail in new[] { SparseTailHandling.Renormalize, SparseTailHandling.TailBucket })
        {
            data.Add("sparse_forward_kl", ObjectiveNames.ForwardKl, tail);
            data.Add("sparse_reverse_kl", ObjectiveNames.ReverseKl, tail);
            data.Add("sparse_jsd", ObjectiveNames.GkdJsd, tail);
            data.Add("sparse_tvd", ObjectiveNames.AtkdTvd, tail);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(DenseTwins))]
    public void Compute_KEqualsVocabulary_EqualsDenseObjective(string sparseName, string denseName, SparseTailHandling tail)
    {
        using var scope = NewDisposeScope();
        const long V = 13;
        var labels = TestData.Labels(41, 2, 5, V, (0, 0), (1, 3));
        var s = TestData.Logits(42, 2, 5, V);
        var t = TestData.Logits(43, 2, 5, V, 3.0);
        // The dense twins' settings: DSKD family (forward/reverse KL) mixes CE with α = 0.5 at T = 2; gkd_jsd is pure KD
        // at T = 0.9, β = 0.5; atkd_tvd is pure KD at T = 1.
        var (alpha, temperature) = denseName switch
        {
            ObjectiveNames.ForwardKl or ObjectiveNames.ReverseKl => (0.5, 2.0),
            ObjectiveNames.GkdJsd => (1.0, 0.9),
            _ => (1.0, 1.0),
        };
        var dense = TestData.Create(denseName);
        var sparse = CreateSparse(sparseName, o =>
        {
            o.KdRate = alpha;
            o.Temperature = temperature;
            o.Beta = 0.5;
            o.TailHandling = tail;
        });

        // Teacher as a top-V "cache": every entry, in descending order (a permutation of the vocabulary), tail −inf.
        var logP = t.log_softmax(-1);
        var (values, ids) = logP.sort(-1, descending: true);
        var teacher = new TeacherOutput { TopKLogProbs = values, TopKIndices = ids, TopKLogTailMass = full(2, 5, double.NegativeInfinity) };

        var sd = s.clone().requires_grad_(true);
        var rd = dense.Compute(TestData.Context(sd, t, labels));
        rd.LossSum.backward();
        var ss = s.clone().requires_grad_(true);
        var rs = sparse.Compute(SparseContext(ss, teacher, labels));
        rs.LossSum.backward();

        Assert.Equal(rd.ScoredTokens.item<long>(), rs.ScoredTokens.item<long>());
        Assert.Equal(rd.Normalizer.item<float>(), rs.Normalizer.item<float>());
        GoldenTests.AssertClose(TestData.Value(rd.LossSum), TestData.Value(rs.LossSum), 1e-5);
        Assert.True((sd.grad! - ss.grad!).abs().max().item<float>() < 1e-5f, $"gradient differs by {(sd.grad! - ss.grad!).abs().max().item<float>()}");
    }

    // Hand computation, one position, V = 4, K = 2. Student logits ln(1..4) → q = [0.1, 0.2, 0.3, 0.4].
    // Teacher top-2: ids [3, 0] with p = [0.5, 0.2], tail mass 0.3.
    //   Renormalize: p̃ = [5/7, 2/7] on ids [3, 0], 0 elsewhere; the student keeps q (q at ids = [0.4, 0.1], tail 0.5).
    //   TailBucket:  p = [0.5, 0.2, 0.3] against q = [0.4, 0.1, 0.5].
    private static readonly double[] Q = [0.4, 0.1, 0.5];
    private static readonly double[] PRenorm = [5.0 / 7, 2.0 / 7, 0];
    private static readonly double[] PBucket = [0.5, 0.2, 0.3];

    private static double Kl(double[] a, double[] b) => a.Zip(b).Where(x => x.First > 0 && x.Second > 0).Sum(x => x.First * Math.Log(x.First / x.Second));

    public static TheoryData<string, SparseTailHandling, double> HandValues()
    {
        double Jsd(double[] p, double beta)
        {
            // Buckets where either side is 0 count 0 (the library's −inf convention): with Renormalize the tail is dropped.
            var keep = p.Select((pi, i) => pi > 0 && Q[i] > 0).ToArray();
            var pk = p.Where((_, i) => keep[i]).ToArray();
            var qk = Q.Where((_, i) => keep[i]).ToArray();
            var m = pk.Zip(qk, (a, b) => (beta * a) + ((1 - beta) * b)).ToArray();
            return (beta * Kl(pk, m)) + ((1 - beta) * Kl(qk, m));
        }

        return new TheoryData<string, SparseTailHandling, double>
        {
            // (5/7)·ln((5/7)/0.4) + (2/7)·ln((2/7)/0.1): DistillKit's ZERO.
            { "sparse_forward_kl", SparseTailHandling.Renormalize, (5.0 / 7 * Math.Log(5.0 / 7 / 0.4)) + (2.0 / 7 * Math.Log(2.0 / 7 / 0.1)) },
            // 0.5·ln(0.5/0.4) + 0.2·ln(0.2/0.1) + 0.3·ln(0.3/0.5): DistillKit's SYMMETRIC_UNIFORM.
            { "sparse_forward_kl", SparseTailHandling.TailBucket, (0.5 * Math.Log(0.5 / 0.4)) + (0.2 * Math.Log(2)) + (0.3 * Math.Log(0.3 / 0.5)) },
            // 0.4·ln(0.4/(5/7)) + 0.1·ln(0.1/(2/7)); the student's tail meets p = 0 and is dropped.
            { "sparse_reverse_kl", SparseTailHandling.Renormalize, (0.4 * Math.Log(0.4 / (5.0 / 7))) + (0.1 * Math.Log(0.1 / (2.0 / 7))) },
            { "sparse_reverse_kl", SparseTailHandling.TailBucket, (0.4 * Math.Log(0.4 / 0.5)) + (0.1 * Math.Log(0.1 / 0.2)) + (0.5 * Math.Log(0.5 / 0.3)) },
            // ½(|0.4 − 5/7| + |0.1 − 2/7| + |0.5 − 0|).
            { "sparse_tvd", SparseTailHandling.Renormalize, 0.5 * (Math.Abs(0.4 - (5.0 / 7)) + Math.Abs(0.1 - (2.0 / 7)) + 0.5) },
            // ½(0.1 + 0.1 + 0.2) = 0.2.
            { "sparse_tvd", SparseTailHandling.TailBucket, 0.2 },
            { "sparse_jsd", SparseTailHandling.Renormalize, Jsd(PRenorm, 0.3) },
            { "sparse_jsd", SparseTailHandling.TailBucket, Jsd(PBucket, 0.3) },
        };
    }

    [Theory]
    [MemberData(nameof(HandValues))]
    public void Compute_KBelowVocabulary_EqualsHandComputation(string name, SparseTailHandling tail, double expected)
    {
        using var scope = NewDisposeScope();
        var (student, teacher, labels) = HandCase();
        var r = CreateSparse(name, o =>
        {
            o.KdRate = 1.0;
            o.Beta = 0.3;
            o.TailHandling = tail;
        }).Compute(SparseContext(student.requires_grad_(true), teacher, labels));
        Assert.Equal(1, r.ScoredTokens.item<long>());
        GoldenTests.AssertClose(expected, TestData.Value(r.LossSum), 1e-6);
        r.LossSum.backward();
        Assert.False(student.grad!.isnan().any().item<bool>());
    }

    [Fact]
    public void ForwardKl_Temperature2Renormalize_EqualsHandComputation()
    {
        // T = 2: p̃ ∝ p^(1/2) over the top-k (exact), q = softmax(ln(1..4)/2) ∝ √(1..4).
        using var scope = NewDisposeScope();
        var (student, teacher, _) = HandCase();
        var kl = SparseForwardKl.PerToken(student, teacher.TopKIndices!, teacher.TopKLogProbs!, null, SparseTailHandling.Renormalize, 2.0);
        double z = Math.Sqrt(0.5) + Math.Sqrt(0.2);
        double[] p = [Math.Sqrt(0.5) / z, Math.Sqrt(0.2) / z];
        double zq = new[] { 1.0, 2, 3, 4 }.Sum(Math.Sqrt);
        double[] q = [Math.Sqrt(4) / zq, Math.Sqrt(1) / zq];
        GoldenTests.AssertClose(Kl(p, q), TestData.Value(kl.sum()), 1e-6);
    }

    [Fact]
    public void Compute_TailBucketWithoutTailMass_ThrowsNamingTheProperty()
    {
        using var scope = NewDisposeScope();
        var (student, teacher, labels) = HandCase();
        var noTail = new TeacherOutput { TopKIndices = teacher.TopKIndices, TopKLogProbs = teacher.TopKLogProbs };
        var objective = CreateSparse("sparse_forward_kl", o => o.TailHandling = SparseTailHandling.TailBucket);
        var e = Assert.Throws<ArgumentException>(() => objective.Compute(SparseContext(student, noTail, labels)));
        Assert.Contains("TopKLogTailMass", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Compute_NoSparseTargets_ThrowsNamingTheProperty()
    {
        using var scope = NewDisposeScope();
        var (student, _, labels) = HandCase();
        var objective = CreateSparse("sparse_tvd");
        var e = Assert.Throws<InvalidOperationException>(() => objective.Compute(SparseContext(student, new TeacherOutput(), labels)));
        Assert.Contains("TopKIndices", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Buckets_MismatchedShapes_ThrowsNamingShapes()
    {
        using var scope = NewDisposeScope();
        var e = Assert.Throws<ArgumentException>(() => SparseTopK.Buckets(
            zeros(2, 3, 10), zeros(2, 4, 5, dtype: ScalarType.Int64), zeros(2, 4, 5), null, SparseTailHandling.Renormalize));
        Assert.Contains("[2, 3, 10]", e.Message, StringComparison.Ordinal);
        Assert.Contains("[2, 4, 5]", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Compute_IgnoredPositionsHoldGarbage_NoNaNAndNoGradient()
    {
        using var scope = NewDisposeScope();
        const long V = 9;
        const int K = 3;
        var labels = TestData.Labels(51, 2, 4, V, (0, 1), (1, 2));
        var s = TestData.Logits(52, 2, 4, V).requires_grad_(true);
        var (values, ids) = TestData.Logits(53, 2, 4, V).log_softmax(-1).topk(K);
        var tailMass = values.exp().sum(-1).neg().log1p();
        // An ignored position may hold anything a padded cache row holds: −inf log-probs and NaN tail.
        values[0, 1] = full(K, double.NegativeInfinity);
        tailMass[1, 2] = double.NaN;
        var teacher = new TeacherOutput { TopKLogProbs = values, TopKIndices = ids, TopKLogTailMass = tailMass };
        foreach (var name in SparseKdObjective.Names)
        {
            s.grad?.zero_();
            var r = CreateSparse(name, o => o.TailHandling = SparseTailHandling.TailBucket).Compute(SparseContext(s, teacher, labels));
            r.LossSum.backward();
            Assert.False(double.IsNaN(TestData.Value(r.LossSum)), name);
            Assert.False(s.grad!.isnan().any().item<bool>(), name);
            Assert.Equal(0f, s.grad![0, 1].abs().max().item<float>());
        }
    }

    [Fact]
    public void Validate_DenseOrMismatchedTeacher_ThrowsNamingTheProblem()
    {
        var objective = CreateSparse("sparse_forward_kl");
        objective.Validate(new ObjectiveSetup { StudentVocabularySize = 10, Teacher = new TeacherInfo { Capabilities = TeacherCapabilities.SparseTopK } });
        var dense = Assert.Throws<InvalidOperationException>(() => objective.Validate(new ObjectiveSetup { StudentVocabularySize = 10, Teacher = new TeacherInfo() }));
        Assert.Contains("sparse top-k", dense.Message, StringComparison.Ordinal);
        var vocab = Assert.Throws<InvalidOperationException>(() => objective.Validate(new ObjectiveSetup
        {
            StudentVocabularySize = 10,
            Teacher = new TeacherInfo { Capabilities = TeacherCapabilities.SparseTopK, VocabularySize = 12 },
        }));
        Assert.Contains("12", vocab.Message, StringComparison.Ordinal);
        Assert.Throws<InvalidOperationException>(() => objective.Validate(new ObjectiveSetup { StudentVocabularySize = 10 }));
    }

    private static (Tensor Student, TeacherOutput Teacher, Tensor Labels) HandCase()
    {
        var student = tensor(new[] { 1.0, 2, 3, 4 }).log().reshape(1, 1, 4).to(ScalarType.Float64);
        var teacher = new TeacherOutput
        {
            TopKIndices = tensor(new long[] { 3, 0 }).reshape(1, 1, 2),
            TopKLogProbs = tensor(new[] { 0.5, 0.2 }).log().reshape(1, 1, 2).to(ScalarType.Float64),
            TopKLogTailMass = tensor(new[] { Math.Log(0.3) }).reshape(1, 1).to(ScalarType.Float64),
        };
        return (student, teacher, tensor(new long[] { 2 }).reshape(1, 1));
    }

    private static ObjectiveContext SparseContext(Tensor student, TeacherOutput teacher, Tensor labels) => new()
    {
        Batch = TestData.Batch(labels),
        Student = new CausalLMOutput(student, null, null),
        Teacher = teacher,
        StudentModel = new TinyCausalLM(seed: 1, vocab: student.shape[^1], hidden: 4),
    };

    private static IDistillationObjective CreateSparse(string name, Action<SparseTopKOptions>? configure = null)
    {
        var services = new ServiceCollection();
        services.AddDistill().AddDistillLosses();
        services.Configure<LossesOptions>(o => configure?.Invoke(o.Sparse));
        using var sp = services.BuildServiceProvider();
        return sp.GetRequiredService<IObjectiveFactory>().Create(name);
    }
}
