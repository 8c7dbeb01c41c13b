using Distill.Data;
using Distill.Losses.CrossTokenizer;
using Distill.Losses.Tests.Sparse;
using Distill.Tests.Shared;
using Distill.Training;
using static TorchSharp.torch;

namespace Distill.Losses.Tests.CrossTokenizer;

/// <summary>
/// ULD against a sparse teacher (sorted top-k probabilities + the log tail mass). The distance over sorted probabilities is
/// Σ_{v&lt;K} |ps_v − pt_v| + |Σ_{v≥K} ps_v − τ|: exact when τ = 0 (K = V_t) or K ≥ V_s, a lower bound otherwise.
/// </summary>
[Collection("Sequential")]
public sealed class SparseUldTests
{
    [Theory]
    [InlineData("uld", 13, 9)]      // the student's vocabulary is the wider one
    [InlineData("uld", 7, 11)]      // the teacher's is
    [InlineData("uld_dskd", 13, 9)]
    [InlineData("uld_dskd", 7, 11)]
    public void TopKOfTheWholeTeacherVocabulary_EqualsDenseLossAndGradient(string name, int vs, int vt)
    {
        using var scope = NewDisposeScope();
        var (zs, zt, labels, teacherLabels) = Inputs(vs, vt);
        var (dense, denseGrad) = Run(name, zs, new TeacherOutput { Logits = zt }, labels, teacherLabels);
        var (sparse, sparseGrad) = Run(name, zs, TopK(zt, vt), labels, teacherLabels);

        Assert.Equal(dense, sparse, 5);
        Assert.True((denseGrad - sparseGrad).abs().max().item<float>() < 1e-6);
    }

    [Theory]
    [InlineData("uld")]
    [InlineData("uld_dskd")]
    public void TopKAtLeastTheStudentVocabulary_EqualsDenseLoss(string name)
    {
        // V_s = 7 ≤ K = 9 < V_t = 14: the student has no mass beyond K and the tail term is exactly τ.
        using var scope = NewDisposeScope();
        var (zs, zt, labels, teacherLabels) = Inputs(7, 14);
        var (dense, denseGrad) = Run(name, zs, new TeacherOutput { Logits = zt }, labels, teacherLabels);
        var (sparse, sparseGrad) = Run(name, zs, TopK(zt, 9), labels, teacherLabels);

        Assert.Equal(dense, sparse, 5);
        Assert.True((denseGrad - sparseGrad).abs().max().item<float>() < 1e-6);
    }

    [Fact]
    public void Distance_KBelowBothVocabularies_IsTheTailBucketHandValue()
    {
        using var scope = NewDisposeScope();
        // Student p = [0.05, 0.5, 0.15, 0.3] (sorted: 0.5, 0.3, 0.15, 0.05); teacher top-2 = [0.25, 0.6], tail τ = 0.15.
        // head = |0.5 − 0.6| + |0.3 − 0.25| = 0.15; tail bucket = |(0.15 + 0.05) − 0.15| = 0.05; total 0.2.
        var student = tensor(new[] { 0.05, 0.5, 0.15, 0.3 }).log().reshape(1, 4);
        var teacher = tensor(new[] { 0.25, 0.6 }).log().reshape(1, 2);
        var d = UldMath.SortedTopKDistance(student, teacher, tensor(new[] { Math.Log(0.15) }));
        Assert.Equal(0.2, d.item<float>(), 5);

        // The dense distance against one teacher with that top-2 (rest [0.1, 0.05], V_t = 4) is 0.15 + |0.15 − 0.1| + |0.05 − 0.05|
        // = 0.2 too; against [0.15, 0, 0, ...] it is 0.15 + 0 + 0.05 = 0.2, and against a flat tail it is larger: the tail bucket
        // is the lower bound |Σ ps_rest − τ| of Σ |ps_v − pt_v| over v ≥ K.
        var exact = UldMath.SortedProbabilityDistance(student, tensor(new[] { 0.25, 0.6, 0.1, 0.05 }).log().reshape(1, 4));
        Assert.Equal(0.2, exact.item<float>(), 5);
        var flat = UldMath.SortedProbabilityDistance(student, tensor(new[] { 0.6, 0.25, 0.05, 0.05, 0.05 }).log().reshape(1, 5));
        Assert.Equal(0.15 + 0.10 + 0.0 + 0.05, flat.item<float>(), 5); // |0.15 − 0.05| + |0.05 − 0.05| + |0 − 0.05|
        Assert.True(flat.item<float>() >= d.item<float>());
    }

    [Fact]
    public void Distance_KAtLeastStudentVocabulary_AddsTheWholeTail()
    {
        using var scope = NewDisposeScope();
        // Student [0.7, 0.3]; teacher top-3 [0.5, 0.2, 0.1], τ = 0.2: 0.2 + 0.1 + 0.1 + 0.2 = 0.6, the dense value against any
        // teacher with that top-3 (e.g. [0.5, 0.2, 0.1, 0.1, 0.1]).
        var student = tensor(new[] { 0.3, 0.7 }).log().reshape(1, 2);
        var d = UldMath.SortedTopKDistance(student, tensor(new[] { 0.5, 0.2, 0.1 }).log().reshape(1, 3), tensor(new[] { Math.Log(0.2) }));
        var dense = UldMath.SortedProbabilityDistance(student, tensor(new[] { 0.5, 0.2, 0.1, 0.1, 0.1 }).log().reshape(1, 5));
        Assert.Equal(0.6, d.item<float>(), 5);
        Assert.Equal(0.6, dense.item<float>(), 5);
    }

    [Fact]
    public void Original_SparseTeacherWithTeacherTemperatureNot1_IsRefused()
    {
        var uld = new UldObjective(new UldOptions { TeacherTemperature = 2.0 });
        var e = Assert.Throws<InvalidOperationException>(() => uld.Validate(new ObjectiveSetup
        {
            StudentVocabularySize = 10,
            Teacher = new TeacherInfo { Capabilities = TeacherCapabilities.SparseTopK },
        }));
        Assert.Contains("TeacherTemperature", e.Message, StringComparison.Ordinal);
        uld.Validate(new ObjectiveSetup { StudentVocabularySize = 10, Teacher = new TeacherInfo { Capabilities = TeacherCapabilities.DenseLogits } });
        new UldObjective().Validate(new ObjectiveSetup { StudentVocabularySize = 10, Teacher = new TeacherInfo { Capabilities = TeacherCapabilities.SparseTopK } });
    }

    [Fact]
    public async Task TeacherTokenCache_KEqualsTeacherVocabulary_TrainsTheSameWeightsAsOnlineUld()
    {
        // Two tokenizers (student: bytes, 257 ids; teacher: the bundled BPE). The cache holds the teacher's tokenisation
        // (manifest tokens = teacher) and its top-V_t, so ULD from the cache is the dense ULD.
        using var folder = TestRuntime.CreateTempFolder();
        using var scope = NewDisposeScope();
        var student = BundledData.TokenizerA();
        var teacherTokenizer = BundledData.TokenizerB();
        var dataset = TokenizedDataset.Create(SparseTeacherTrainingTests.Examples(), student, teacherTokenizer, maxLength: 96, maxPromptLength: 48);
        var teacherModel = SparseTeacherTrainingTests.Tiny(teacherTokenizer, hidden: 48, layers: 1, seed: 2);
        using var cached = await SparseTeacherTrainingTests.BuildCache(folder.Path, dataset, teacherModel, teacherTokenizer.VocabSize, TeacherCacheTokens.Teacher);
        Assert.Equal(TeacherCacheTokens.Teacher, cached.Reader.Manifest.Tokens);

        var a = SparseTeacherTrainingTests.Tiny(student, hidden: 32, layers: 1, seed: 1);
        var b = SparseTeacherTrainingTests.Tiny(student, hidden: 32, layers: 1, seed: 1);
        var online = SparseTeacherTrainingTests.Train(a, new UldObjective(), new LocalModelTeacher(teacherModel), SparseTeacherTrainingTests.Batches(dataset), Path.Combine(folder.Path, "online"));
        var fromCache = SparseTeacherTrainingTests.Train(b, new UldObjective(), cached, SparseTeacherTrainingTests.Batches(dataset), Path.Combine(folder.Path, "cached"));

        Assert.Equal(TrainingStatus.Completed, fromCache.Result.Status);
        Assert.Equal(online.Steps[0].Loss, fromCache.Steps[0].Loss, 5);
        var other = b.Module.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        foreach (var (name, p) in a.Module.named_parameters())
        {
            var diff = (p - other[name]).abs().max().item<float>();
            Assert.True(diff < 2e-5, $"{name}: online and cached weights differ by {diff}");
        }
    }

    private static (Tensor Zs, Tensor Zt, Tensor Labels, Tensor TeacherLabels) Inputs(int vs, int vt)
    {
        var g = new Generator(11);
        var zs = (randn(2, 6, vs, generator: g) * 2).requires_grad_();
        var zt = randn(2, 7, vt, generator: g) * 2;
        var labels = tensor(new long[] { -100, 3, 4, 1, 2, -100, -100, -100, 5, 6, 1, 0 }, [2, 6]);
        var teacherLabels = tensor(new long[] { -100, -100, 2, 3, 1, 4, -100, -100, 5, 6, 7, 1, 2, -100 }, [2, 7]);
        return (zs, zt, labels, teacherLabels);
    }

    /// <summary>A sparse teacher output from dense logits: top-k log-probs (descending) and log(1 − Σ p) (−inf at k = V).</summary>
    private static TeacherOutput TopK(Tensor zt, int k)
    {
        var logP = zt.to(ScalarType.Float64).log_softmax(-1);
        var (values, ids) = logP.topk(k, dim: -1);
        var tail = k == zt.shape[^1]
            ? full(zt.shape[0], zt.shape[1], double.NegativeInfinity)
            : (1.0 - values.exp().sum(-1)).clamp_min(0).log();
        return new TeacherOutput { TopKLogProbs = values.to(ScalarType.Float32), TopKIndices = ids, TopKLogTailMass = tail.to(ScalarType.Float32) };
    }

    private static (double Loss, Tensor Grad) Run(string name, Tensor zs, TeacherOutput teacher, Tensor labels, Tensor teacherLabels)
    {
        zs.grad = null;
        IDistillationObjective objective = name == "uld" ? new UldObjective() : new UldDskdObjective();
        var context = new ObjectiveContext
        {
            Batch = new DistillationBatch
            {
                InputIds = zeros_like(labels),
                AttentionMask = ones_like(labels),
                Labels = labels,
                TeacherInputIds = zeros_like(teacherLabels),
                TeacherAttentionMask = ones_like(teacherLabels),
                TeacherLabels = teacherLabels,
            },
            Student = new CausalLMOutput(zs, null, null),
            Teacher = teacher,
        };
        var result = objective.Compute(context);
        result.LossSum.backward();
        return (result.LossSum.item<float>(), zs.grad!.clone());
    }
}
