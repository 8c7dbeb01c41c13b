using static TorchSharp.torch;

namespace Distill.Losses;

/// <summary>Helpers shared by the objectives of this package.</summary>
internal static class ObjectiveResults
{
    /// <summary>Builds a result with detached metrics.</summary>
    internal static ObjectiveResult Create(Tensor lossSum, long tokenCount, params (string Name, Tensor Value)[] metrics)
    {
        var dict = new Dictionary<string, Tensor>(metrics.Length);
        foreach (var (name, value) in metrics)
        {
            dict[name] = value.detach();
        }

        return new ObjectiveResult(lossSum, tensor((float)tokenCount, ScalarType.Float32, lossSum.device), tensor(tokenCount, ScalarType.Int64, lossSum.device), dict);
    }

    /// <summary>Requirements of a same-vocabulary objective that reads full student and teacher logits.</summary>
    internal static readonly ObjectiveRequirements LogitsPair = new()
    {
        NeedsTeacher = true,
        NeedsTeacherLogits = true,
        NeedsStudentLogits = true,
        RequiresSameVocabulary = true,
    };
}
