using Distill.Training;
using static TorchSharp.torch;

namespace Distill.Core.Tests.Training.Sources;

/// <summary>Builds small training batches from (prompt, response) rows, and reads rows back.</summary>
internal static class SourceBatches
{
    /// <summary>Rows <c>prompt + response</c>, padded on <paramref name="left"/> or right with <paramref name="pad"/>; labels aligned with logits score the response.</summary>
    public static DistillationBatch Make(IReadOnlyList<(long[] Prompt, long[] Response)> rows, long pad, bool left = false)
    {
        var width = rows.Max(r => r.Prompt.Length + r.Response.Length);
        var b = rows.Count;
        var ids = new long[b * width];
        var mask = new long[b * width];
        var labels = new long[b * width];
        var positions = new long[b * width];
        Array.Fill(ids, pad);
        Array.Fill(labels, DistillationBatch.IgnoreIndex);
        for (var r = 0; r < b; r++)
        {
            var seq = rows[r].Prompt.Concat(rows[r].Response).ToArray();
            var start = left ? width - seq.Length : 0;
            for (var t = 0; t < seq.Length; t++)
            {
                ids[(r * width) + start + t] = seq[t];
                mask[(r * width) + start + t] = 1;
                positions[(r * width) + start + t] = t;
                if (t >= rows[r].Prompt.Length - 1 && t < seq.Length - 1)
                {
                    labels[(r * width) + start + t] = seq[t + 1];
                }
            }
        }

        return new DistillationBatch
        {
            InputIds = tensor(ids, [b, width]),
            AttentionMask = tensor(mask, [b, width]),
            Labels = tensor(labels, [b, width]),
            PositionIds = tensor(positions, [b, width]),
            ExampleIds = [.. Enumerable.Range(100, b).Select(i => (long)i)],
        };
    }

    /// <summary>The real tokens of row <paramref name="row"/>.</summary>
    public static long[] RealTokens(DistillationBatch batch, int row)
    {
        var ids = batch.InputIds[row].cpu().data<long>().ToArray();
        var mask = batch.AttentionMask[row].cpu().data<long>().ToArray();
        return [.. ids.Where((_, i) => mask[i] != 0)];
    }

    /// <summary>The scored labels of row <paramref name="row"/>, in order.</summary>
    public static long[] ScoredLabels(DistillationBatch batch, int row) =>
        [.. batch.Labels[row].cpu().data<long>().ToArray().Where(l => l != DistillationBatch.IgnoreIndex)];

    public static BatchTransformContext Context(int index = 0, int epoch = 0, int seed = 11) => new(seed, epoch, index, CPU, CancellationToken.None);

    private static bool Same(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>();

    public static void AssertSameBatch(DistillationBatch expected, DistillationBatch actual)
    {
        Assert.Equal(expected.InputIds.shape, actual.InputIds.shape);
        Assert.True(Same(expected.InputIds, actual.InputIds), "input ids differ");
        Assert.True(Same(expected.AttentionMask, actual.AttentionMask), "attention masks differ");
        Assert.True(Same(expected.Labels, actual.Labels), "labels differ");
        Assert.True(Same(expected.PositionIds!, actual.PositionIds!), "position ids differ");
    }
}
