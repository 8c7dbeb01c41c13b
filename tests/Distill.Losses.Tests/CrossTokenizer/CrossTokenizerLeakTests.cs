using Distill.Losses.CrossTokenizer;
using Distill.Losses.DualSpace;
using Distill.Tests.Shared;
using TorchSharp;
using static TorchSharp.torch;

namespace Distill.Losses.Tests.CrossTokenizer;

/// <summary>Ten forward/backward steps of each objective leave the number of live tensors unchanged.</summary>
[Collection("Sequential")]
public sealed class CrossTokenizerLeakTests
{
    [Fact]
    public void Compute_TenStepsOfEveryObjective_DoNotGrowLiveTensors()
    {
        using var folder = TestRuntime.CreateTempFolder();
        var mapPath = Path.Combine(folder.Path, "map.json");
        File.WriteAllText(mapPath, CrossTokGoldens.Get("mined.tea2stu").GetRawText());
        var map = Data.Alignment.VocabularyMap.Load(mapPath, 14, 12);
        var (dskd, dskdTemplate, _, _) = DskdTests.Build();
        var cma = new DskdCmaObjective(null, new DualSpaceProjectors(6, 8, withQuery: true));
        // Models (modules hold parameters, which no dispose scope owns) are created once, outside the measured steps.
        using var student = new FakeCausalLM(randn(11, 6));
        using var teacher = new FakeCausalLM(randn(13, 8));
        using var minedStudent = new FakeCausalLM(randn(12, 3));

        void Step()
        {
            using var scope = NewDisposeScope();
            dskd.Compute(new ObjectiveContext
            {
                Batch = dskdTemplate.Batch,
                Student = new CausalLMOutput(CrossTokGoldens.Float("dskd.student_logits", requiresGrad: true), CrossTokGoldens.Float("dskd.student_hidden", requiresGrad: true), null),
                Teacher = dskdTemplate.Teacher,
                StudentModel = dskdTemplate.StudentModel,
                TeacherModel = dskdTemplate.TeacherModel,
            }).LossSum.backward();
            var b = 2;
            var ids = randint(0, 11, [b, 7]);
            var labels = randint(0, 11, [b, 7]).index_put_(tensor(-100L), TensorIndex.Colon, TensorIndex.Slice(0, 2));
            var tids = randint(0, 13, [b, 9]);
            var tlabels = randint(0, 13, [b, 9]).index_put_(tensor(-100L), TensorIndex.Colon, TensorIndex.Slice(0, 3));
            var batch = new DistillationBatch
            {
                InputIds = ids, AttentionMask = ones_like(ids), Labels = labels,
                TeacherInputIds = tids, TeacherAttentionMask = ones_like(tids), TeacherLabels = tlabels,
            };
            var zs = randn(b, 7, 11).requires_grad_(true);
            var hs = randn(b, 7, 6).requires_grad_(true);
            var context = new ObjectiveContext
            {
                Batch = batch,
                Student = new CausalLMOutput(zs, hs, null),
                Teacher = new TeacherOutput { Logits = randn(b, 9, 13), HiddenStates = randn(b, 9, 8) },
                StudentModel = student,
                TeacherModel = teacher,
            };
            cma.Compute(context).LossSum.backward();
            new UldObjective().Compute(context).LossSum.backward();
            new UldDskdObjective().Compute(context).LossSum.backward();

            var mids = CrossTokGoldens.Long("mined.ids");
            var mt = CrossTokGoldens.Long("mined.t_ids");
            var mzs = CrossTokGoldens.Float("mined.student_logits", requiresGrad: true);
            var mined = new ObjectiveContext
            {
                Batch = new DistillationBatch
                {
                    InputIds = mids, AttentionMask = ones_like(mids), Labels = CrossTokGoldens.Long("mined.labels"),
                    TeacherInputIds = mt, TeacherAttentionMask = ones_like(mt), TeacherLabels = CrossTokGoldens.Long("mined.t_labels"),
                    MinEdAlignments = [new MinEdAlignment([0, 1, 2, -1, 3, 4, 5, 6, 7]), new MinEdAlignment([0, -1, 3, 4])],
                },
                Student = new CausalLMOutput(mzs, null, null),
                Teacher = new TeacherOutput { Logits = CrossTokGoldens.Float("mined.teacher_logits") },
                StudentModel = minedStudent,
            };
            new MinEdObjective(null, map).Compute(mined).LossSum.backward();
        }

        Step(); // the projectors' .grad tensors are created by the first backward
        var before = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        for (var i = 0; i < 10; i++)
        {
            Step();
        }

        Assert.Equal(before, DisposeScopeManager.Statistics.ThreadTotalLiveCount);
    }
}
