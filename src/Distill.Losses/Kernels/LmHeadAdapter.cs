using Distill.Models;
using static TorchSharp.torch;

namespace Distill.Losses.Kernels;

/// <summary>
/// An additive adapter on the student's lm_head as the fused kernel sees it: the module giving the [c, V] delta for [c, H]
/// hidden rows (<see cref="Projection.Adapter"/>, e.g. a LoRA layer) and the trainable parameters that delta depends on.
/// </summary>
/// <param name="Module">Maps [c, H] to the delta [c, V] added to the base logits.</param>
/// <param name="Parameters">The parameters that receive gradients (those with <c>requires_grad</c>).</param>
internal sealed record LmHeadAdapter(nn.Module<Tensor, Tensor> Module, IReadOnlyList<Tensor> Parameters)
{
    /// <summary>
    /// The adapter attached to <paramref name="projection"/>, or <see langword="null"/>. Its parameters are the adapter
    /// module's own plus the projection's other than the base weight and bias: adapters such as LoRA register theirs as
    /// children of the projection (PEFT's <c>lm_head.lora_A</c>), not of the adapter module.
    /// </summary>
    /// <param name="projection">The lm_head.</param>
    /// <returns>The adapter and its trainable parameters.</returns>
    internal static LmHeadAdapter? Of(Projection projection)
    {
        ArgumentNullException.ThrowIfNull(projection);
        if (projection.Adapter is not { } module)
        {
            return null;
        }

        var baseHandles = new HashSet<IntPtr> { projection.Weight.Handle };
        if (projection.Bias is { } bias)
        {
            baseHandles.Add(bias.Handle);
        }

        var seen = new HashSet<IntPtr>();
        var parameters = module.parameters().Concat(projection.parameters())
            .Where(p => p.requires_grad && !baseHandles.Contains(p.Handle) && seen.Add(p.Handle))
            .Cast<Tensor>()
            .ToList();
        return new LmHeadAdapter(module, parameters);
    }

    /// <summary>An adapter whose trainable parameters are all registered on <paramref name="module"/> itself.</summary>
    /// <param name="module">The adapter module.</param>
    /// <returns>The adapter and its trainable parameters.</returns>
    internal static LmHeadAdapter FromModule(nn.Module<Tensor, Tensor> module)
    {
        ArgumentNullException.ThrowIfNull(module);
        return new LmHeadAdapter(module, [.. module.parameters().Where(p => p.requires_grad).Cast<Tensor>()]);
    }
}
