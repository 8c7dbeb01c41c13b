using static TorchSharp.torch;

namespace Distill.Losses.CrossTokenizer;

/// <summary>Shared pieces of both ULD variants.</summary>
internal static class UldMath
{
    /// <summary>
    /// Σ_v |sort↓(softmax(a)) − sort↓(softmax(b))| per row, the narrower vocabulary zero-padded to the wider one.
    /// </summary>
    /// <param name="studentRows">[.., V_s] logits (already divided by a temperature if any).</param>
    /// <param name="teacherRows">[.., V_t] logits, same leading shape.</param>
    /// <returns>[..] float32.</returns>
    internal static Tensor SortedProbabilityDistance(Tensor studentRows, Tensor teacherRows)
    {
        using var scope = NewDisposeScope();
        var ps = studentRows.softmax(-1, ScalarType.Float32).sort(-1, descending: true).Values;
        var pt = teacherRows.softmax(-1, ScalarType.Float32).sort(-1, descending: true).Values;
        var gap = ps.shape[^1] - pt.shape[^1];
        if (gap > 0)
        {
            pt = nn.functional.pad(pt, [0, gap], value: 0.0); // zero-pad the narrower vocabulary
        }
        else if (gap < 0)
        {
            ps = nn.functional.pad(ps, [0, -gap], value: 0.0);
        }

        return (ps - pt).abs().sum(-1).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The same distance against a sparse teacher: its top-k log-probabilities at temperature 1 (<paramref name="teacherTopKLogProbs"/>,
    /// [.., K]) and the log of the mass outside them (<paramref name="teacherLogTail"/>, [..]; −∞ or <see langword="null"/> = 0).
    /// </summary>
    /// <remarks>
    /// With ps the student's sorted probabilities (V_s entries) and pt the teacher's (V_t entries, of which the top K are
    /// known, tail mass τ = Σ_{v≥K} pt_v), both zero-padded to the wider width, the dense distance is
    /// Σ_{v&lt;K} |ps_v − pt_v| + Σ_{v≥K} |ps_v − pt_v|. The first sum is computed exactly. The second is replaced by
    /// |Σ_{v≥K} ps_v − τ| (the tail as one bucket), which is exact when τ = 0 (K covers the teacher's support, e.g. K = V_t) or
    /// when K ≥ V_s (the student has no mass beyond K, and the term is τ), and otherwise a lower bound of the true term, which
    /// lies in [|Σ_{v≥K} ps_v − τ|, Σ_{v≥K} ps_v + τ].
    /// </remarks>
    /// <param name="studentRows">[.., V_s] student logits (already divided by its temperature).</param>
    /// <param name="teacherTopKLogProbs">[.., K] teacher top-k log-probabilities (any order).</param>
    /// <param name="teacherLogTail">[..] log tail mass, or <see langword="null"/> (treated as 0).</param>
    /// <returns>[..] float32.</returns>
    internal static Tensor SortedTopKDistance(Tensor studentRows, Tensor teacherTopKLogProbs, Tensor? teacherLogTail)
    {
        using var scope = NewDisposeScope();
        var ps = studentRows.softmax(-1, ScalarType.Float32).sort(-1, descending: true).Values;
        var pt = teacherTopKLogProbs.to(ScalarType.Float32).exp().sort(-1, descending: true).Values;
        var k = pt.shape[^1];
        var vs = ps.shape[^1];
        Tensor head, rest;
        if (vs >= k)
        {
            head = (ps.narrow(-1, 0, k) - pt).abs().sum(-1);
            rest = vs > k ? ps.narrow(-1, k, vs - k).sum(-1) : zeros_like(head);
        }
        else
        {
            head = (nn.functional.pad(ps, [0, k - vs], value: 0.0) - pt).abs().sum(-1);
            rest = zeros_like(head);
        }

        var tail = teacherLogTail is null ? zeros_like(head) : teacherLogTail.to(ScalarType.Float32).exp();
        return head.Add((rest - tail).abs()).MoveToOuterDisposeScope();
    }

    /// <summary>Per row: the index of the first label ≠ −100 (0 when there is none) and the number of such labels.</summary>
    /// <param name="labels">[B, L] int64.</param>
    /// <returns>Starts [B] and counts [B], both int64 on the labels' device.</returns>
    internal static (Tensor Start, Tensor Count) StartAndCount(Tensor labels)
    {
        using var scope = NewDisposeScope();
        var valid = TokenReduction.ValidMask(labels).to(ScalarType.Int64);
        // argmax returns the first maximal index; an all-ignored row gives 0 (and a count of 0).
        var start = valid.argmax(-1);
        var count = valid.sum(-1);
        return (start.MoveToOuterDisposeScope(), count.MoveToOuterDisposeScope());
    }

    /// <summary>Gathers rows <c>start[b] + k</c> (k &lt; <paramref name="length"/>) of <paramref name="x"/> [B, L, ..], wrapping around modulo L.</summary>
    internal static Tensor GatherRows(Tensor x, Tensor start, long length)
    {
        using var scope = NewDisposeScope();
        var l = x.shape[1];
        var k = TorchScalars.Arange(length, dtype: ScalarType.Int64, device: x.device).unsqueeze(0);   // [1, K]
        var idx = start.unsqueeze(1).Add(k).Remainder(l);                                 // [B, K]
        if (x.dim() == 2)
        {
            return x.gather(1, idx).MoveToOuterDisposeScope();
        }

        var expanded = idx.unsqueeze(-1).expand(x.shape[0], length, x.shape[2]);
        return x.gather(1, expanded).MoveToOuterDisposeScope();
    }
}
