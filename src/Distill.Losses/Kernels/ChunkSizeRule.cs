namespace Distill.Losses.Kernels;

/// <summary>
/// The automatic row count of a fused kernel's chunk, from the vocabulary size V and the hidden size H under a working-set
/// budget (used when <see cref="LossesOptions.ChunkSize"/> is not set).
/// </summary>
/// <remarks>
/// <para>
/// A chunk of c rows holds about <see cref="BuffersPerRow"/> float32 [c, V] tensors at its peak (student logits turned into
/// the gradient in place, teacher probabilities, a teacher chunk computed from hidden states), so its working set is
/// c·V·4·<see cref="BuffersPerRow"/> bytes. The budget is half the size of the lm_head weight gradient [V, H] in float32,
/// which the kernel must hold anyway, and at least <see cref="MinimumBudgetBytes"/>:
/// </para>
/// <para><c>budget = max(64 MiB, V·H·4 / 2)</c>, <c>c = clamp(floor_pow2(budget / (16·V)), 128, 1024)</c>.</para>
/// <para>
/// Above the 64 MiB floor this is c = H/8 rounded down to a power of two: 128 rows for H = 1024 (about 65 MB of chunk
/// buffers at V = 32000, 263 MB at V = 128256), 64 → 128 for GPT-2 small. The lower clamp keeps the per-chunk matrix
/// products compute-bound (each chunk streams W [V, H] twice and the gradient buffer once, so fewer rows mean more memory
/// traffic per flop); the upper clamp is Liger's and the reference benchmark's chunk. Like Liger, the count depends on V
/// and H; unlike Liger it does not grow with the batch, so the peak does not either.
/// </para>
/// </remarks>
internal static class ChunkSizeRule
{
    /// <summary>The number of [c, V] float32 buffers a chunk holds at its peak.</summary>
    public const int BuffersPerRow = 4;

    /// <summary>The smallest working-set budget, in bytes.</summary>
    public const long MinimumBudgetBytes = 64L << 20;

    /// <summary>The fewest rows per chunk.</summary>
    public const int MinimumRows = 128;

    /// <summary>The most rows per chunk.</summary>
    public const int MaximumRows = 1024;

    /// <summary>The working-set budget for an lm_head of <paramref name="vocab"/> × <paramref name="hidden"/>, in bytes.</summary>
    /// <param name="vocab">V.</param>
    /// <param name="hidden">H.</param>
    /// <returns>max(64 MiB, V·H·2).</returns>
    public static long BudgetBytes(long vocab, long hidden) => Math.Max(MinimumBudgetBytes, vocab * hidden * sizeof(float) / 2);

    /// <summary>The rows per chunk: <paramref name="configured"/> when set, else the rule above.</summary>
    /// <param name="configured">An explicit chunk size (≥ 1), or <see langword="null"/> for the automatic choice.</param>
    /// <param name="vocab">V.</param>
    /// <param name="hidden">H.</param>
    /// <returns>Rows per chunk.</returns>
    public static int Resolve(int? configured, long vocab, long hidden)
    {
        if (configured is { } rows)
        {
            return rows;
        }

        ArgumentOutOfRangeException.ThrowIfLessThan(vocab, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(hidden, 1);
        var fit = BudgetBytes(vocab, hidden) / ((long)BuffersPerRow * sizeof(float) * vocab);
        var pow2 = fit < 1 ? 1 : 1L << (63 - System.Numerics.BitOperations.LeadingZeroCount((ulong)fit));
        return (int)Math.Clamp(pow2, MinimumRows, MaximumRows);
    }
}
