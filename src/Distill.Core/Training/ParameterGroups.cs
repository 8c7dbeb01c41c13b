using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Distill.Training;

/// <summary>One optimizer parameter group as the trainer builds it.</summary>
/// <param name="Name">Group name (<c>student_decay</c>, <c>student_no_decay</c>, <c>objective</c>).</param>
/// <param name="Parameters">Named trainable parameters.</param>
/// <param name="BaseLearningRate">Peak learning rate.</param>
/// <param name="WeightDecay">Decoupled weight decay.</param>
internal sealed record ParameterGroupSpec(string Name, IReadOnlyList<(string Name, Parameter Parameter)> Parameters, double BaseLearningRate, double WeightDecay);

/// <summary>Splits trainable parameters into AdamW groups.</summary>
internal static class ParameterGroups
{
    /// <summary>Whether <paramref name="name"/> gets no weight decay: it contains one of <paramref name="fragments"/> (case-insensitive).</summary>
    public static bool IsNoDecay(string name, IEnumerable<string> fragments) =>
        fragments.Any(f => name.Contains(f, StringComparison.OrdinalIgnoreCase));

    /// <summary>
    /// Student parameters with <c>requires_grad</c> split into decay / no-decay by name (DSKD's rule generalised), then the
    /// objective's trainable parameters in one group at the objective learning rate with the same weight decay (DSKD's projector
    /// group). Empty groups are omitted; the order is fixed, so optimizer state maps back on resume.
    /// </summary>
    public static List<ParameterGroupSpec> Build(nn.Module student, nn.Module? objective, TrainingOptions options)
    {
        var decay = new List<(string, Parameter)>();
        var noDecay = new List<(string, Parameter)>();
        foreach (var (name, p) in student.named_parameters())
        {
            if (!p.requires_grad)
            {
                continue;
            }

            (IsNoDecay(name, options.NoDecayNameFragments) ? noDecay : decay).Add((name, p));
        }

        var groups = new List<ParameterGroupSpec>();
        if (decay.Count > 0)
        {
            groups.Add(new("student_decay", decay, options.LearningRate, options.WeightDecay));
        }

        if (noDecay.Count > 0)
        {
            groups.Add(new("student_no_decay", noDecay, options.LearningRate, 0));
        }

        if (objective is not null)
        {
            var obj = objective.named_parameters().Where(p => p.parameter.requires_grad).Select(p => (p.name, p.parameter)).ToList();
            if (obj.Count > 0)
            {
                groups.Add(new("objective", obj, options.ObjectiveLearningRate, options.WeightDecay));
            }
        }

        return groups;
    }
}
