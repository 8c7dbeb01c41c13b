using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Distill.Losses.DualSpace;

/// <summary>
/// DSKD's projectors: <c>t2s</c> = Linear(d_t → d_s), <c>s2t</c> = Linear(d_s → d_t) and, for cross-model attention,
/// <c>query</c> = Linear(2·d_s → 2·d_t), all with bias and PyTorch's default initialisation (Kaiming-uniform weight,
/// uniform bias), as <c>configs/projector_config.json</c> of songmzhang/DSKD builds them.
/// </summary>
/// <remarks>
/// Parameter names are <c>t2s.weight</c>, <c>t2s.bias</c>, <c>s2t.weight</c>, <c>s2t.bias</c>, <c>query.weight</c>,
/// <c>query.bias</c> (DSKD's <c>projectors.*</c> state dict without the prefix). The trainer trains them in their own
/// optimizer group (DSKD's <c>projector_lr</c>, 1e-3) and checkpoints them with the run.
/// </remarks>
public sealed class DualSpaceProjectors : nn.Module
{
    private readonly Linear t2s;
    private readonly Linear s2t;
    private readonly Linear? query;

    /// <summary>Creates the projectors.</summary>
    /// <param name="studentHiddenSize">d_s.</param>
    /// <param name="teacherHiddenSize">d_t.</param>
    /// <param name="withQuery">Whether to create the CMA query projector.</param>
    /// <param name="device">Where to create them (CPU by default).</param>
    /// <param name="dtype">Their dtype (float32 by default).</param>
    public DualSpaceProjectors(long studentHiddenSize, long teacherHiddenSize, bool withQuery, Device? device = null, ScalarType? dtype = null)
        : base("projectors")
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(studentHiddenSize, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(teacherHiddenSize, 1);
        StudentHiddenSize = studentHiddenSize;
        TeacherHiddenSize = teacherHiddenSize;
        t2s = nn.Linear(teacherHiddenSize, studentHiddenSize, hasBias: true, device: device, dtype: dtype);
        s2t = nn.Linear(studentHiddenSize, teacherHiddenSize, hasBias: true, device: device, dtype: dtype);
        register_module("t2s", t2s);
        register_module("s2t", s2t);
        if (withQuery)
        {
            query = nn.Linear(2 * studentHiddenSize, 2 * teacherHiddenSize, hasBias: true, device: device, dtype: dtype);
            register_module("query", query);
        }
    }

    /// <summary>Gets d_s.</summary>
    public long StudentHiddenSize { get; }

    /// <summary>Gets d_t.</summary>
    public long TeacherHiddenSize { get; }

    /// <summary>Gets the teacher→student projector, Linear(d_t → d_s).</summary>
    public Linear TeacherToStudent => t2s;

    /// <summary>Gets the student→teacher projector, Linear(d_s → d_t).</summary>
    public Linear StudentToTeacher => s2t;

    /// <summary>Gets the CMA query projector, Linear(2·d_s → 2·d_t), or <see langword="null"/> for plain DSKD.</summary>
    public Linear? Query => query;

    /// <summary>Applies <paramref name="projector"/> to <paramref name="input"/> cast to the projector's dtype.</summary>
    /// <param name="projector">One of the projectors.</param>
    /// <param name="input">[.., in].</param>
    /// <returns>[.., out] in the projector's dtype.</returns>
    internal static Tensor Apply(Linear projector, Tensor input) => projector.forward(input.to(projector.weight!.dtype));
}
