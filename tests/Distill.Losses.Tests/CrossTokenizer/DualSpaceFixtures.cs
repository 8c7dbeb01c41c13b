using Distill.Losses.DualSpace;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Distill.Losses.Tests.CrossTokenizer;

/// <summary>Builds contexts and projectors from the goldens.</summary>
internal static class DualSpaceFixtures
{
    /// <summary>Projectors whose weights are the golden ones under <c>{prefix}.{t2s|s2t|query}.{weight|bias}</c>.</summary>
    internal static DualSpaceProjectors Projectors(string prefix, long ds, long dt, bool withQuery)
    {
        var p = new DualSpaceProjectors(ds, dt, withQuery);
        Load(p.TeacherToStudent, prefix + ".t2s");
        Load(p.StudentToTeacher, prefix + ".s2t");
        if (p.Query is { } q)
        {
            Load(q, prefix + ".query");
        }

        return p;
    }

    internal static void AssertProjectorGrads(string prefix, DualSpaceProjectors p, bool withQuery)
    {
        CrossTokGoldens.AssertClose(prefix + ".t2s.weight", p.TeacherToStudent.weight!.grad!);
        CrossTokGoldens.AssertClose(prefix + ".t2s.bias", p.TeacherToStudent.bias!.grad!);
        CrossTokGoldens.AssertClose(prefix + ".s2t.weight", p.StudentToTeacher.weight!.grad!);
        CrossTokGoldens.AssertClose(prefix + ".s2t.bias", p.StudentToTeacher.bias!.grad!);
        if (withQuery)
        {
            CrossTokGoldens.AssertClose(prefix + ".query.weight", p.Query!.weight!.grad!);
            CrossTokGoldens.AssertClose(prefix + ".query.bias", p.Query!.bias!.grad!);
        }
    }

    private static void Load(Linear linear, string prefix)
    {
        using var noGrad = no_grad();
        using var w = CrossTokGoldens.Float(prefix + ".weight");
        using var b = CrossTokGoldens.Float(prefix + ".bias");
        linear.weight!.copy_(w);
        linear.bias!.copy_(b);
    }
}
