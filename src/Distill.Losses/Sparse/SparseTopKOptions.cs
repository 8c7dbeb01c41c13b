using System.ComponentModel.DataAnnotations;

namespace Distill.Losses;

/// <summary>
/// Options of the sparse top-k objectives (<c>sparse_forward_kl</c>, <c>sparse_reverse_kl</c>, <c>sparse_jsd</c>,
/// <c>sparse_tvd</c>): sum = (1 − α)·CE_sum + α·KD_sum over scored tokens, KD against the teacher's top-k log-probs.
/// </summary>
/// <remarks>The <c>Sparse</c> section of <see cref="LossesOptions"/>; configure with <c>services.Configure&lt;LossesOptions&gt;(o => o.Sparse.…)</c>.</remarks>
public sealed class SparseTopKOptions
{
    /// <summary>Gets or sets α, the weight of the KD term; CE gets 1 − α (DSKD's <c>--kd-rate</c>).</summary>
    /// <value>The default is 0.5.</value>
    [Range(0.0, 1.0)]
    public double KdRate { get; set; } = SparseTopKDefaults.KdRate;

    /// <summary>Gets or sets the distillation temperature T (no T² factor).</summary>
    /// <value>The default is 1.0: cached and served log-probs are at temperature 1, where every tail handling is exact.</value>
    [Range(1e-6, 1e6)]
    public double Temperature { get; set; } = SparseTopKDefaults.Temperature;

    /// <summary>Gets or sets β of <c>sparse_jsd</c>: 0 = forward KL, 1 = reverse KL.</summary>
    /// <value>The default is 0.5 (TRL <c>GKDConfig.beta</c>).</value>
    [Range(0.0, 1.0)]
    public double Beta { get; set; } = SparseTopKDefaults.Beta;

    /// <summary>Gets or sets how the teacher's mass outside its top-k is treated.</summary>
    /// <value>The default is <see cref="SparseTailHandling.Renormalize"/> (DistillKit's default, <c>ZERO</c>).</value>
    public SparseTailHandling TailHandling { get; set; } = SparseTailHandling.Renormalize;
}

/// <summary>Default values of <see cref="SparseTopKOptions"/>.</summary>
internal static class SparseTopKDefaults
{
    public const double KdRate = 0.5;
    public const double Temperature = 1.0;
    public const double Beta = 0.5;
}
