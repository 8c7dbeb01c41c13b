using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Distill.Models;

/// <summary>A token embedding table with transformers' parameter name <c>weight</c> [V, H].</summary>
internal sealed class TokenEmbedding : nn.Module<Tensor, Tensor>
{
    // Field name equals the registered name: Module.to() rebinds parameter fields by name.
    private readonly Parameter weight;

    internal TokenEmbedding(long count, long dim, ScalarType dtype, Device device)
        : base(nameof(TokenEmbedding))
    {
        weight = new Parameter(torch.empty([count, dim], dtype, device));
        RegisterComponents();
    }

    internal Parameter Weight => weight;

    public override Tensor forward(Tensor ids) =>
        weight.index_select(0, ids.reshape(-1)).reshape([.. ids.shape, weight.shape[1]]);
}

/// <summary>RMSNorm computed in float32: <c>w · (x · rsqrt(mean(x²) + eps))</c> cast back to the input dtype (Llama, Qwen2).</summary>
internal sealed class RmsNorm : nn.Module<Tensor, Tensor>
{
    private readonly Parameter weight;
    private readonly double eps;

    internal RmsNorm(long dim, double eps, ScalarType dtype, Device device)
        : base(nameof(RmsNorm))
    {
        weight = new Parameter(torch.ones(dim, dtype, device));
        this.eps = eps;
        RegisterComponents();
    }

    internal Parameter Weight => weight;

    public override Tensor forward(Tensor input)
    {
        using var scope = torch.NewDisposeScope();
        var x = input.to_type(ScalarType.Float32);
        var variance = x.pow(TorchScalars.Constant(2)).mean([-1], keepdim: true);
        x = x * torch.rsqrt(variance.Add(eps));
        return (weight * x.to_type(input.dtype)).MoveToOuterDisposeScope();
    }
}

/// <summary>Activation functions by their HF names.</summary>
internal static class Activations
{
    internal static Func<Tensor, Tensor> Get(string name) => name switch
    {
        // gelu_new / gelu_pytorch_tanh: 0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³))).
        "gelu_new" or "gelu_pytorch_tanh" or "gelu_fast" => x => nn.functional.gelu(x, GELU.Approximate.tanh),
        "gelu" => x => nn.functional.gelu(x),
        "silu" or "swish" => x => nn.functional.silu(x),
        "relu" => x => nn.functional.relu(x),
        _ => throw new NotSupportedException($"Activation '{name}' is not supported (supported: gelu_new, gelu_pytorch_tanh, gelu_fast, gelu, silu, swish, relu)."),
    };
}

/// <summary>Helpers shared by the model implementations.</summary>
internal static class ModelHelpers
{
    /// <summary>A new uninitialised parameter.</summary>
    internal static Parameter Empty(ScalarType dtype, Device device, params long[] shape) => new(torch.empty(shape, dtype, device));

    /// <summary>A <see cref="LinearProjection"/> over uninitialised parameters.</summary>
    internal static LinearProjection Linear(long inFeatures, long outFeatures, bool bias, ScalarType dtype, Device device) =>
        new(Empty(dtype, device, outFeatures, inFeatures), bias ? Empty(dtype, device, outFeatures) : null);

    /// <summary>Scaled dot-product attention with the bias built by <see cref="AttentionMask"/>; q [B, H, T, D], k/v [B, H, S, D].</summary>
    internal static Tensor Attend(Tensor q, Tensor k, Tensor v, AttentionBias bias, double dropout) =>
        nn.functional.scaled_dot_product_attention(q, k, v, bias.Additive, dropout, bias.IsCausal);
}
