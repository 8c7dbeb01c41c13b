using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Distill.Training;

/// <summary>
/// Float32 master copies of trainable parameters stored in a lower precision (bf16 training): gradients are copied up and
/// normalised here, AdamW updates the masters, and the model receives the rounded result (DeepSpeed's bf16 optimizer scheme).
/// </summary>
internal sealed class MasterWeights : IDisposable
{
    private readonly List<(string Name, Parameter Model)> model;

    private MasterWeights(List<(string, Parameter)> model)
    {
        this.model = model;
        using var noGrad = no_grad();
        Masters = [.. model.Select(p => (Parameter)new Parameter(p.Item2.detach().to(ScalarType.Float32).clone(), requires_grad: true).DetachFromDisposeScope())];
    }

    /// <summary>Gets the float32 masters, in the order of the groups' parameters.</summary>
    public IReadOnlyList<Parameter> Masters { get; }

    /// <summary>Returns masters when any trainable parameter is not float32, else <see langword="null"/>.</summary>
    public static MasterWeights? CreateIfNeeded(IReadOnlyList<ParameterGroupSpec> groups)
    {
        var all = groups.SelectMany(g => g.Parameters).ToList();
        return all.Any(p => p.Parameter.dtype != ScalarType.Float32) ? new MasterWeights(all) : null;
    }

    /// <summary>Sets each master's gradient to the model gradient in float32 times <paramref name="scale"/> (a float32 scalar tensor).</summary>
    public void LoadGradients(Tensor scale)
    {
        for (var i = 0; i < model.Count; i++)
        {
            var g = model[i].Model.grad;
            Masters[i].grad = g is null ? null : g.to(ScalarType.Float32).mul_(scale);
        }
    }

    /// <summary>Copies the masters into the model parameters (rounding to their dtype).</summary>
    public void CopyToModel()
    {
        using var noGrad = no_grad();
        for (var i = 0; i < model.Count; i++)
        {
            model[i].Model.copy_(Masters[i]);
        }
    }

    public void Save(string path) => NamedTensorFile.Write(path, model.Select((p, i) => new KeyValuePair<string, Tensor>(p.Name, Masters[i])));

    public void Load(string path)
    {
        NamedTensorFile.LoadInto(path, model.Select((p, i) => (p.Name, (Tensor)Masters[i])).ToDictionary(x => x.Name, x => x.Item2, StringComparer.Ordinal));
        CopyToModel();
    }

    public void Dispose()
    {
        foreach (var m in Masters)
        {
            m.Dispose();
        }
    }
}
