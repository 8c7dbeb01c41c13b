using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Distill.Data;

/// <summary>
/// Top-k log-probabilities and the log tail mass of float32 logit rows in host memory, in one read of each row for the
/// selection and one for the sums: no [n, V] temporaries (a torch log_softmax, top-k and logsumexp of the rest each read or
/// write the whole row, and the top-k alone costs more than the rest together).
/// </summary>
/// <remarks>
/// Selection keeps a min-heap of the k best seen and skips 8-wide blocks that hold nothing above its worst; entries are
/// returned in descending order (equal values: lower id first). Sums are exp(x − max) in float32 lanes accumulated in
/// float64: log p = x − (max + log Σ), tail = log Σ_rest − log Σ, where Σ_rest sums the entries outside the top-k directly
/// (no 1 − Σ_k p cancellation). A row with NaN or with no finite maximum yields NaN, as log_softmax would.
/// </remarks>
internal static class HostTopK
{
    /// <summary>Scores <paramref name="logits"/> (row-major [n, V]) into [n, k] ids and log-probabilities and [n] tails.</summary>
    internal static unsafe void Score(ReadOnlySpan<float> logits, int vocab, int k, Span<int> ids, Span<float> logProbs, Span<float> tails)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(vocab, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(k, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(k, vocab);
        var n = logits.Length / vocab;
        if (logits.Length != n * vocab || ids.Length != n * k || logProbs.Length != n * k || tails.Length != n)
        {
            throw new ArgumentException($"Top-k buffers do not fit [{n}, {vocab}] logits at k = {k}: ids {ids.Length}, log-probs {logProbs.Length}, tails {tails.Length}.");
        }

        // Rows are independent: split them over the cores when there are enough to pay for the hand-off.
        var parts = Math.Clamp(n / 32, 1, Environment.ProcessorCount);
        fixed (float* x = logits)
        fixed (int* id = ids)
        fixed (float* lp = logProbs)
        fixed (float* tail = tails)
        {
            var (px, pid, plp, ptail) = ((nint)x, (nint)id, (nint)lp, (nint)tail);
            void Part(int part)
            {
                var first = (int)((long)n * part / parts);
                var end = (int)((long)n * (part + 1) / parts);
                var heapValues = new float[k];
                var heapIds = new int[k];
                for (var r = first; r < end; r++)
                {
                    ((float*)ptail)[r] = Row(
                        new ReadOnlySpan<float>((float*)px + ((long)r * vocab), vocab),
                        new Span<int>((int*)pid + ((long)r * k), k),
                        new Span<float>((float*)plp + ((long)r * k), k),
                        heapValues,
                        heapIds);
                }
            }

            if (parts == 1)
            {
                Part(0);
            }
            else
            {
                Parallel.For(0, parts, Part);
            }
        }
    }

    /// <summary>One row: writes its top-k (descending) and returns its log tail mass.</summary>
    /// <remarks>Optimised on first call: a cache run calls it a few thousand times, too few for tiered JIT to catch up.</remarks>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float Row(ReadOnlySpan<float> x, Span<int> ids, Span<float> logProbs, Span<float> heapValues, Span<int> heapIds)
    {
        var k = ids.Length;
        var v = x.Length;
        for (var j = 0; j < k; j++)
        {
            heapValues[j] = x[j];
            heapIds[j] = j;
        }

        for (var j = (k / 2) - 1; j >= 0; j--)
        {
            SiftDown(heapValues, heapIds, j, k);
        }

        var worst = heapValues[0];
        var w = Vector256<float>.Count;
        ref var start = ref MemoryMarshal.GetReference(x);
        var at = k;
        for (; at + w <= v; at += w)
        {
            if (!Vector256.GreaterThanAny(Vector256.LoadUnsafe(ref start, (nuint)at), Vector256.Create(worst)))
            {
                continue;
            }

            for (var l = at; l < at + w; l++)
            {
                worst = Offer(x[l], l, worst, heapValues, heapIds, k);
            }
        }

        for (; at < v; at++)
        {
            worst = Offer(x[at], at, worst, heapValues, heapIds, k);
        }

        // Pop the worst first: the output comes out in descending order.
        for (var size = k; size > 0; size--)
        {
            ids[size - 1] = heapIds[0];
            logProbs[size - 1] = heapValues[0];
            heapValues[0] = heapValues[size - 1];
            heapIds[0] = heapIds[size - 1];
            SiftDown(heapValues, heapIds, 0, size - 1);
        }

        var max = logProbs[0];
        var kth = logProbs[k - 1];
        var topAtKth = 0;
        for (var j = k - 1; j >= 0 && logProbs[j] == kth; j--)
        {
            topAtKth++;
        }

        // Σ exp(x − max) over the row and over the entries below the k-th value (ties with it are added back below).
        var vMax = Vector256.Create(max);
        var vKth = Vector256.Create(kth);
        Vector256<double> all = default, rest = default;
        var atKth = 0;
        at = 0;
        for (; at + w <= v; at += w)
        {
            var block = Vector256.LoadUnsafe(ref start, (nuint)at);
            var e = Vector256.Exp(block - vMax);
            var below = Vector256.ConditionalSelect(Vector256.LessThan(block, vKth), e, Vector256<float>.Zero);
            var (lo, hi) = Vector256.Widen(e);
            all += lo + hi;
            var (restLo, restHi) = Vector256.Widen(below);
            rest += restLo + restHi;
            atKth += BitOperations.PopCount(Vector256.Equals(block, vKth).ExtractMostSignificantBits());
        }

        var sumAll = Vector256.Sum(all);
        var sumRest = Vector256.Sum(rest);
        for (; at < v; at++)
        {
            var e = (double)MathF.Exp(x[at] - max);
            sumAll += e;
            if (x[at] < kth)
            {
                sumRest += e;
            }
            else if (x[at] == kth)
            {
                atKth++;
            }
        }

        sumRest += (atKth - topAtKth) * (double)MathF.Exp(kth - max);
        var logSum = Math.Log(sumAll);
        var lse = max + logSum;
        for (var j = 0; j < k; j++)
        {
            logProbs[j] = (float)(logProbs[j] - lse);
        }

        return (float)(Math.Log(sumRest) - logSum);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Offer(float value, int id, float worst, Span<float> heapValues, Span<int> heapIds, int k)
    {
        if (!(value > worst))
        {
            return worst;
        }

        heapValues[0] = value;
        heapIds[0] = id;
        SiftDown(heapValues, heapIds, 0, k);
        return heapValues[0];
    }

    /// <summary>Restores the min-heap below <paramref name="i"/> (root = the worst kept: smallest value, then largest id).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void SiftDown(Span<float> values, Span<int> ids, int i, int size)
    {
        while (true)
        {
            var worst = i;
            var left = (2 * i) + 1;
            var right = left + 1;
            if (left < size && Worse(values[left], ids[left], values[worst], ids[worst]))
            {
                worst = left;
            }

            if (right < size && Worse(values[right], ids[right], values[worst], ids[worst]))
            {
                worst = right;
            }

            if (worst == i)
            {
                return;
            }

            (values[i], values[worst]) = (values[worst], values[i]);
            (ids[i], ids[worst]) = (ids[worst], ids[i]);
            i = worst;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool Worse(float a, int aId, float b, int bId) => a < b || (a == b && aId > bId);
}
