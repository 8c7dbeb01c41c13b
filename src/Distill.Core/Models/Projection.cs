using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Distill.Models;

/// <summary>
/// A dense projection <c>y = x·W(ᵀ) + b</c> with an optional additive adapter (LoRA) slot. Every linear map of the Distill
/// models (attention, MLP, lm_head) is one of these, so adapters can be attached without rewriting the model.
/// </summary>
/// <remarks>
/// Parameter names are <c>weight</c> and <c>bias</c>, as in transformers, so state dicts map 1:1. An attached adapter
/// is a module returning the delta to add to the base output; it registers its own parameters as children of this
/// projection under the names it chooses (PEFT uses <c>lora_A</c> / <c>lora_B</c>).
/// </remarks>
public abstract class Projection : nn.Module<Tensor, Tensor>
{
    private nn.Module<Tensor, Tensor>? adapter;

    /// <summary>Initialises the projection.</summary>
    /// <param name="name">The module's name.</param>
    /// <param name="inFeatures">Input width.</param>
    /// <param name="outFeatures">Output width.</param>
    protected Projection(string name, long inFeatures, long outFeatures)
        : base(name)
    {
        InFeatures = inFeatures;
        OutFeatures = outFeatures;
    }

    /// <summary>Gets the input width.</summary>
    public long InFeatures { get; }

    /// <summary>Gets the output width.</summary>
    public long OutFeatures { get; }

    /// <summary>Gets a value indicating whether the weight is stored [in, out] (GPT-2 Conv1D) rather than [out, in] (nn.Linear).</summary>
    public abstract bool WeightIsInputMajor { get; }

    /// <summary>Gets the weight parameter: [out, in] for <see cref="LinearProjection"/>, [in, out] for <see cref="Conv1D"/>.</summary>
    public abstract Parameter Weight { get; }

    /// <summary>Gets the bias parameter [out], or <see langword="null"/>.</summary>
    public abstract Parameter? Bias { get; }

    /// <summary>Gets the attached adapter, if any.</summary>
    public nn.Module<Tensor, Tensor>? Adapter => adapter;

    /// <summary>Attaches (or, with <see langword="null"/>, detaches) an adapter whose output is added to the base output.</summary>
    /// <param name="value">The adapter; it must map [.., in] to [.., out].</param>
    public void SetAdapter(nn.Module<Tensor, Tensor>? value) => adapter = value;

    /// <summary>Computes the base projection only (no adapter).</summary>
    /// <param name="input">[.., in].</param>
    /// <returns>[.., out].</returns>
    public abstract Tensor ForwardBase(Tensor input);

    /// <inheritdoc />
    public override Tensor forward(Tensor input)
    {
        var y = ForwardBase(input);
        return adapter is null ? y : y.add_(adapter.forward(input).to(y.dtype), TorchScalars.One);
    }
}

/// <summary>nn.Linear layout: weight [out, in], <c>y = x Wᵀ + b</c> (Llama, Mistral, Qwen2, lm_head).</summary>
public sealed class LinearProjection : Projection
{
    // Field names equal the registered names: TorchSharp's Module.to() rebinds parameter fields by name.
    private readonly Parameter? weight;
    private readonly Parameter? bias;
    private readonly Func<Parameter>? tiedWeight;

    /// <summary>Creates a projection initialised like <c>torch.nn.Linear</c> (Kaiming-uniform weight, uniform bias).</summary>
    public LinearProjection(long inFeatures, long outFeatures, bool hasBias = true, Device? device = null, ScalarType? dtype = null)
        : base(nameof(LinearProjection), inFeatures, outFeatures)
    {
        using var init = nn.Linear(inFeatures, outFeatures, hasBias, device, dtype);
        weight = new Parameter(init.weight!.detach().clone());
        bias = hasBias ? new Parameter(init.bias!.detach().clone()) : null;
        RegisterComponents();
    }

    /// <summary>Creates a projection over existing parameters (e.g. uninitialised ones a checkpoint will fill).</summary>
    /// <param name="weight">[out, in].</param>
    /// <param name="bias">[out], or <see langword="null"/>.</param>
    public LinearProjection(Parameter weight, Parameter? bias = null)
        : base(nameof(LinearProjection), (weight ?? throw new ArgumentNullException(nameof(weight))).shape[1], weight.shape[0])
    {
        this.weight = weight;
        this.bias = bias;
        RegisterComponents();
    }

    private LinearProjection(Func<Parameter> tiedWeight, long inFeatures, long outFeatures)
        : base(nameof(LinearProjection), inFeatures, outFeatures)
    {
        this.tiedWeight = tiedWeight;
        RegisterComponents();
    }

    /// <summary>
    /// Creates a bias-free projection whose weight is owned by another module (tied lm_head = input embedding). The weight is
    /// read through <paramref name="weight"/> on every call, so it follows the owner across <c>to(device/dtype)</c>, and it is
    /// not registered here: the state dict holds it once, under the owner's name (as HF checkpoints do).
    /// </summary>
    /// <param name="weight">Returns the owner's current [out, in] weight.</param>
    /// <param name="inFeatures">Input width.</param>
    /// <param name="outFeatures">Output width.</param>
    /// <returns>The tied projection.</returns>
    public static LinearProjection Tied(Func<Parameter> weight, long inFeatures, long outFeatures)
    {
        ArgumentNullException.ThrowIfNull(weight);
        return new LinearProjection(weight, inFeatures, outFeatures);
    }

    /// <summary>Gets a value indicating whether the weight is owned by another module (see <see cref="Tied"/>).</summary>
    public bool IsTied => tiedWeight is not null;

    /// <inheritdoc />
    public override bool WeightIsInputMajor => false;

    /// <inheritdoc />
    public override Parameter Weight => tiedWeight?.Invoke() ?? weight!;

    /// <inheritdoc />
    public override Parameter? Bias => bias;

    /// <inheritdoc />
    public override Tensor ForwardBase(Tensor input) => nn.functional.linear(input, Weight, bias);
}

/// <summary>GPT-2's Conv1D: weight [in, out], <c>y = x W + b</c>.</summary>
internal sealed class Conv1D : Projection
{
    private readonly Parameter weight;
    private readonly Parameter bias;

    /// <summary>Creates a Conv1D initialised as transformers does (weight N(0, 0.02²), bias 0).</summary>
    public Conv1D(long inFeatures, long outFeatures, Device? device = null, ScalarType? dtype = null)
        : base(nameof(Conv1D), inFeatures, outFeatures)
    {
        weight = new Parameter(torch.normal(0.0, 0.02, [inFeatures, outFeatures], dtype: dtype ?? ScalarType.Float32, device: device));
        bias = new Parameter(torch.zeros(outFeatures, dtype: dtype ?? ScalarType.Float32, device: device));
        RegisterComponents();
    }

    /// <summary>Creates a Conv1D over existing parameters (e.g. uninitialised ones a checkpoint will fill).</summary>
    /// <param name="weight">[in, out].</param>
    /// <param name="bias">[out].</param>
    public Conv1D(Parameter weight, Parameter bias)
        : base(nameof(Conv1D), (weight ?? throw new ArgumentNullException(nameof(weight))).shape[0], weight.shape[1])
    {
        this.weight = weight;
        this.bias = bias ?? throw new ArgumentNullException(nameof(bias));
        RegisterComponents();
    }

    /// <inheritdoc />
    public override bool WeightIsInputMajor => true;

    /// <inheritdoc />
    public override Parameter Weight => weight;

    /// <inheritdoc />
    public override Parameter? Bias => bias;

    /// <inheritdoc />
    public override Tensor ForwardBase(Tensor input) => torch.addmm(bias, input.reshape(-1, InFeatures), weight, beta: 1, alpha: 1).reshape([.. input.shape[..^1], OutFeatures]);
}
