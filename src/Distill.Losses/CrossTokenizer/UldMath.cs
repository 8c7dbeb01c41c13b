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
        var k = arange(length, dtype: ScalarType.Int64, device: x.device).unsqueeze(0);   // [1, K]
        var idx = (start.unsqueeze(1) + k).remainder(l);                                 // [B, K]
        if (x.dim() == 2)
        {
            return x.gather(1, idx).MoveToOuterDisposeScope();
        }

        var expanded = idx.unsqueeze(-1).expand(x.shape[0], length, x.shape[2]);
        return x.gather(1, expanded).MoveToOuterDisposeScope();
    }
}
