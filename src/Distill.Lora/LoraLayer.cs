using Distill.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Distill.Lora;

/// <summary>
/// The LoRA update of one dense layer: <c>Δy = scaling · B(A(dropout(x)))</c> with A [r, in] and B [out, r], attached to a
/// <see cref="Projection"/> through its adapter slot.
/// </summary>
/// <remarks>
/// <c>lora_A</c>, <c>lora_B</c> and <c>lora_dropout</c> are registered as children of the target projection, so the model's
/// state dict holds <c>&lt;path&gt;.lora_A.weight</c> [r, in] and <c>&lt;path&gt;.lora_B.weight</c> [out, r] (and
/// <c>.lora_B.bias</c> [out] with <see cref="LoraConfig.LoraBias"/>), and <c>Module.to(...)</c>, <c>train()</c> and
/// <c>eval()</c> on the model reach them. The layout is the same for GPT-2's Conv1D; only the merged delta is transposed.
/// </remarks>
public sealed class LoraLayer : nn.Module<Tensor, Tensor>
{
    internal const string AName = "lora_A";
    internal const string BName = "lora_B";
    internal const string DropoutName = "lora_dropout";

    private readonly Linear loraA;
    private readonly Linear loraB;
    private readonly nn.Module<Tensor, Tensor> dropout;

    internal LoraLayer(string path, Projection target, int r, double alpha, double scaling, double dropoutP, bool loraBias, ScalarType dtype)
        : base(nameof(LoraLayer))
    {
        Path = path;
        Target = target;
        Rank = r;
        Alpha = alpha;
        Scaling = scaling;
        var device = target.Weight.device;
        loraA = nn.Linear(target.InFeatures, r, hasBias: false, device: device, dtype: dtype);
        loraB = nn.Linear(r, target.OutFeatures, hasBias: loraBias, device: device, dtype: dtype);
        dropout = dropoutP > 0 ? nn.Dropout(dropoutP) : nn.Identity();
    }

    /// <summary>Gets the module path of the adapted layer, e.g. <c>model.layers.0.self_attn.q_proj</c>.</summary>
    public string Path { get; }

    /// <summary>Gets the adapted projection.</summary>
    public Projection Target { get; }

    /// <summary>Gets the rank r.</summary>
    public int Rank { get; }

    /// <summary>Gets alpha.</summary>
    public double Alpha { get; }

    /// <summary>Gets the scaling <c>alpha/r</c> (or <c>alpha/√r</c> with rsLoRA).</summary>
    public double Scaling { get; }

    /// <summary>Gets the A matrix, [r, in].</summary>
    public Parameter A => loraA.weight!;

    /// <summary>Gets the B matrix, [out, r].</summary>
    public Parameter B => loraB.weight!;

    /// <summary>Gets the bias of B, [out], or <see langword="null"/> without <see cref="LoraConfig.LoraBias"/>.</summary>
    public Parameter? BBias => loraB.bias;

    /// <summary>Gets a value indicating whether the delta is currently merged into the base weight.</summary>
    public bool IsMerged { get; internal set; }

    /// <summary>Computes the adapter's contribution for <paramref name="input"/>.</summary>
    /// <param name="input">[.., in], any floating dtype (cast to the adapter dtype).</param>
    /// <returns>[.., out] in the adapter dtype; the projection casts it to its output dtype and adds it.</returns>
    public override Tensor forward(Tensor input)
    {
        using var scope = torch.NewDisposeScope();
        var x = input.to(loraA.weight!.dtype);
        return loraB.forward(loraA.forward(dropout.forward(x))).MulInPlace(Scaling).MoveToOuterDisposeScope();
    }

    /// <summary>Computes the merged weight delta <c>scaling · B·A</c> in the base weight's layout and dtype.</summary>
    /// <returns>[out, in] for a linear layer, [in, out] (transposed) for a Conv1D; computed in float32.</returns>
    public Tensor DeltaWeight()
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var delta = torch.matmul(B.to(ScalarType.Float32), A.to(ScalarType.Float32)).MulInPlace(Scaling); // [out, in]
        if (Target.WeightIsInputMajor)
        {
            delta = delta.t(); // Conv1D stores [in, out]
        }

        return delta.to(Target.Weight.dtype).contiguous().MoveToOuterDisposeScope();
    }

    /// <summary>Computes the merged bias delta <c>scaling · b_B</c>, or <see langword="null"/> without a lora_B bias.</summary>
    /// <returns>[out] in the base bias dtype, or <see langword="null"/>.</returns>
    public Tensor? DeltaBias()
    {
        if (BBias is null)
        {
            return null;
        }

        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var dtype = Target.Bias?.dtype ?? Target.Weight.dtype;
        return BBias.to(ScalarType.Float32).Mul(Scaling).to(dtype).MoveToOuterDisposeScope();
    }

    /// <summary>Initialises A and B as PEFT does for <paramref name="mode"/>.</summary>
    internal void Initialize(LoraInitialization mode)
    {
        using var noGrad = torch.no_grad();
        switch (mode)
        {
            case LoraInitialization.Default:
                // nn.Linear's own init: U(-1/sqrt(in), 1/sqrt(in)) for a = sqrt(5).
                nn.init.kaiming_uniform_(A, a: Math.Sqrt(5));
                break;
            case LoraInitialization.Gaussian:
                nn.init.normal_(A, mean: 0, std: 1.0 / Rank);
                break;
            case LoraInitialization.Random:
                return; // keep nn.Linear's random A and B
        }

        nn.init.zeros_(B);
        if (BBias is not null)
        {
            nn.init.zeros_(BBias);
        }
    }

    /// <summary>Registers lora_A / lora_B / lora_dropout on the target and plugs this layer into its adapter slot.</summary>
    internal void Attach()
    {
        Target.register_module(AName, loraA);
        Target.register_module(BName, loraB);
        Target.register_module(DropoutName, dropout);
        if (!Target.training)
        {
            dropout.eval(); // a new module starts in training mode; follow the layer it is attached to
        }

        Target.SetAdapter(this);
    }

    /// <summary>Removes this layer's modules from the target (the inverse of <see cref="Attach"/>) and frees them.</summary>
    internal void Detach()
    {
        Target.SetAdapter(null);
        Target.register_module(AName, null!);
        Target.register_module(BName, null!);
        Target.register_module(DropoutName, null!);
        loraA.Dispose();
        loraB.Dispose();
        dropout.Dispose();
    }

    /// <summary>Named parameters of this adapter relative to the target (<c>lora_A.weight</c>, <c>lora_B.weight</c>, <c>lora_B.bias</c>).</summary>
    internal IEnumerable<(string Name, Parameter Parameter)> AdapterParameters()
    {
        yield return ($"{AName}.weight", A);
        yield return ($"{BName}.weight", B);
        if (BBias is not null)
        {
            yield return ($"{BName}.bias", BBias);
        }
    }
}
