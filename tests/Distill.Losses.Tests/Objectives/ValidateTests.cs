using static TorchSharp.torch;

namespace Distill.Losses.Tests;

/// <summary>Objectives own their compatibility checks: vocabulary (with SliceToSharedVocabulary), teacher capabilities, teacher presence.</summary>
public sealed class ValidateTests
{
    private static ObjectiveSetup Setup(int student, int teacher, TeacherCapabilities capabilities = TeacherCapabilities.DenseLogits) =>
        new() { StudentVocabularySize = student, Teacher = new TeacherInfo { VocabularySize = teacher, Capabilities = capabilities } };

    [Theory]
    [InlineData(ObjectiveNames.ForwardKl)]
    [InlineData(ObjectiveNames.Atkd)]
    [InlineData("gkd_jsd_chunked")]
    public void Validate_257Vs264WithoutSlicing_ThrowsNamingBothSizesAndTheOption(string name)
    {
        var ex = Assert.Throws<InvalidOperationException>(() => DistillObjectives.Create(name).Validate(Setup(257, 264)));
        Assert.Contains("V = 257", ex.Message, StringComparison.Ordinal);
        Assert.Contains("V = 264", ex.Message, StringComparison.Ordinal);
        Assert.Contains(nameof(LossesOptions.SliceToSharedVocabulary), ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_257Vs264WithSlicing_PassesAndComputeUsesTheShared257Columns()
    {
        using var scope = NewDisposeScope();
        var options = new LossesOptions { SliceToSharedVocabulary = true };
        var objective = DistillObjectives.Create(ObjectiveNames.ForwardKl, options);
        objective.Validate(Setup(257, 264));
        var y = TestData.Labels(1, 2, 3, 257, (0, 1));
        var s = TestData.Logits(2, 2, 3, 257);
        var t = TestData.Logits(3, 2, 3, 264);
        var sliced = objective.Compute(TestData.Context(s, t, y));
        var manual = DistillObjectives.Create(ObjectiveNames.ForwardKl).Compute(TestData.Context(s, t.narrow(-1, 0, 257).contiguous(), y));
        Assert.Equal(TestData.Value(manual.LossSum), TestData.Value(sliced.LossSum));
    }

    [Theory]
    [InlineData(ObjectiveNames.ReverseKl)]
    [InlineData(ObjectiveNames.Atkd)]
    [InlineData(ObjectiveNames.ForwardKl)]
    [InlineData("dskd_cma")] // uld and uld_dskd accept sparse targets (sorted top-k probabilities): see SparseUldTests
    public void Validate_SparseTopKOnlyTeacher_IsRejectedByFullDistributionObjectives(string name)
    {
        var ex = Assert.Throws<InvalidOperationException>(() => DistillObjectives.Create(name).Validate(Setup(10, 10, TeacherCapabilities.SparseTopK)));
        Assert.Contains("sparse top-k", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_HiddenStatesOnlyTeacher_IsEnoughForChunkedButNotForPlain()
    {
        DistillObjectives.Create("forward_kl_chunked").Validate(Setup(10, 10, TeacherCapabilities.HiddenStates));
        Assert.Throws<InvalidOperationException>(() => DistillObjectives.Create(ObjectiveNames.ForwardKl).Validate(Setup(10, 10, TeacherCapabilities.HiddenStates)));
        var dskd = Assert.Throws<InvalidOperationException>(() => DistillObjectives.Create("dskd").Validate(Setup(10, 10, TeacherCapabilities.DenseLogits)));
        Assert.Contains("hidden states", dskd.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_TeacherPresence_RequiredByKdObjectivesOnly()
    {
        var noTeacher = new ObjectiveSetup { StudentVocabularySize = 10 };
        DistillObjectives.Create(ObjectiveNames.Sft).Validate(noTeacher);
        DistillObjectives.Create(ObjectiveNames.SeqKd).Validate(Setup(10, 99));
        var ex = Assert.Throws<InvalidOperationException>(() => DistillObjectives.Create(ObjectiveNames.GkdJsd).Validate(noTeacher));
        Assert.Contains("needs a teacher", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("dskd_cma")]
    [InlineData("uld")]
    [InlineData("uld_dskd")]
    public void Validate_CrossTokenizerObjectives_AcceptDifferentVocabularies(string name)
    {
        DistillObjectives.Create(name).Validate(Setup(257, 50257, TeacherCapabilities.DenseLogits | TeacherCapabilities.HiddenStates));
    }

    [Fact]
    public void Validate_UnknownTeacherVocabulary_DefersTheCheckToTheFirstBatch()
    {
        DistillObjectives.Create(ObjectiveNames.ForwardKl).Validate(Setup(257, -1));
    }
}
