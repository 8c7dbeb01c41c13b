using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Distill.Data;

/// <summary>
/// Top-k log-probabilities and the log tail mass of float32 logit rows in host memory, in three reads of each row (group
/// maxima, candidates, sums) and no [n, V] temporaries (torch's topk alone cost more than log_softmax, scatter and
/// logsumexp together).
/// </summary>
/// <remarks>
/// Selection takes a lower bound that at least k entries reach (the k-th largest of the maxima of disjoint groups of 8,
/// by quickselect), gathers the few entries at or above it with 8-wide compares and sorts only those; a row with NaN falls
/// back to a min-heap of the k best seen. Entries come out in descending order (equal values: lower id first). Sums are
/// exp(x − max) in float32 lanes accumulated in float64: log p = x − (max + log Σ), tail = log Σ_rest − log Σ, where Σ_rest sums the entries outside the top-k directly
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
                var scratch = Scratch.For(vocab, k);
                for (var r = first; r < end; r++)
                {
                    ((float*)ptail)[r] = Row(
                        new ReadOnlySpan<float>((float*)px + ((long)r * vocab), vocab),
                        new Span<int>((int*)pid + ((long)r * k), k),
                        new Span<float>((float*)plp + ((long)r * k), k),
                        scratch);
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

    /// <summary>Per-thread buffers of <see cref="Row"/>: a k-entry heap and V-entry maxima and candidates.</summary>
    internal readonly record struct Scratch(float[] HeapValues, int[] HeapIds, float[] Maxima, Candidate[] Candidates)
    {
        internal static Scratch For(int vocab, int k) => new(new float[k], new int[k], new float[vocab], new Candidate[vocab]);
    }

    /// <summary>A logit and its id.</summary>
    internal readonly record struct Candidate(float Value, int Id);

    /// <summary>One row: writes its top-k (descending) and returns its log tail mass.</summary>
    /// <remarks>Optimised on first call: a cache run calls it a few thousand times, too few for tiered JIT to catch up.</remarks>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float Row(ReadOnlySpan<float> x, Span<int> ids, Span<float> logProbs, Scratch scratch)
    {
        var k = ids.Length;
        var v = x.Length;
        var w = Vector256<float>.Count;
        ref var start = ref MemoryMarshal.GetReference(x);
        if (!SelectAboveBound(x, ids, logProbs, scratch))
        {
            SelectByHeap(x, ids, logProbs, scratch.HeapValues, scratch.HeapIds);
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
        var at = 0;
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

    /// <summary>
    /// Top-k by a lower bound: the k-th largest of the maxima of disjoint groups of 8 (at least k entries reach it), then
    /// a sort of the few entries at or above it. False when NaN gets in the way (the heap handles that row).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static bool SelectAboveBound(ReadOnlySpan<float> x, Span<int> ids, Span<float> values, Scratch scratch)
    {
        var k = ids.Length;
        var v = x.Length;
        var group = v >= 8 * k ? 8 : 1;
        var groups = (v + group - 1) / group;
        var maxima = scratch.Maxima.AsSpan(0, groups);
        for (int g = 0, at = 0; g < groups; g++, at += group)
        {
            var end = Math.Min(at + group, v);
            var m = x[at];
            for (var j = at + 1; j < end; j++)
            {
                m = Math.Max(m, x[j]);
            }

            if (float.IsNaN(m))
            {
                return false;
            }

            maxima[g] = m;
        }

        var bound = KthLargest(maxima, k);
        var candidates = scratch.Candidates;
        var count = 0;
        var w = Vector256<float>.Count;
        ref var start = ref MemoryMarshal.GetReference(x);
        var vBound = Vector256.Create(bound);
        var i = 0;
        for (; i + w <= v; i += w)
        {
            var mask = Vector256.GreaterThanOrEqual(Vector256.LoadUnsafe(ref start, (nuint)i), vBound).ExtractMostSignificantBits();
            while (mask != 0)
            {
                var l = BitOperations.TrailingZeroCount(mask);
                candidates[count++] = new Candidate(x[i + l], i + l);
                mask &= mask - 1;
            }
        }

        for (; i < v; i++)
        {
            if (x[i] >= bound)
            {
                candidates[count++] = new Candidate(x[i], i);
            }
        }

        if (count < k)
        {
            return false;
        }

        var found = candidates.AsSpan(0, count);
        found.Sort(static (a, b) => a.Value != b.Value ? b.Value.CompareTo(a.Value) : a.Id.CompareTo(b.Id));
        for (var j = 0; j < k; j++)
        {
            ids[j] = found[j].Id;
            values[j] = found[j].Value;
        }

        return true;
    }

    /// <summary>The k-th largest entry (Hoare quickselect, reorders <paramref name="a"/>; no NaN).</summary>
    private static float KthLargest(Span<float> a, int k)
    {
        int lo = 0, hi = a.Length - 1, target = k - 1;
        while (lo < hi)
        {
            var pivot = a[(int)((uint)(lo + hi) >> 1)];
            int i = lo, j = hi;
            while (i <= j)
            {
                while (a[i] > pivot)
                {
                    i++;
                }

                while (a[j] < pivot)
                {
                    j--;
                }

                if (i <= j)
                {
                    (a[i], a[j]) = (a[j], a[i]);
                    i++;
                    j--;
                }
            }

            if (target <= j)
            {
                hi = j;
            }
            else if (target >= i)
            {
                lo = i;
            }
            else
            {
                return a[target];
            }
        }

        return a[target];
    }

    /// <summary>Top-k by a min-heap of the k best seen (root = the worst kept), skipping 8-wide blocks below it.</summary>
    internal static void SelectByHeap(ReadOnlySpan<float> x, Span<int> ids, Span<float> values, Span<float> heapValues, Span<int> heapIds)
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
            values[size - 1] = heapValues[0];
            heapValues[0] = heapValues[size - 1];
            heapIds[0] = heapIds[size - 1];
            SiftDown(heapValues, heapIds, 0, size - 1);
        }
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
