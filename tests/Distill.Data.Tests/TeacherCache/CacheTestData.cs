namespace Distill.Data.Tests.TeacherCache;

/// <summary>Shared inputs of the teacher-cache tests: a deterministic fake teacher, examples and temp folders.</summary>
internal static class CacheTestData
{
    internal static readonly TeacherCacheIdentity Identity = new()
    {
        Teacher = "fake-teacher",
        TeacherConfigHash = "cfg0",
        TokenizerHash = "tok0",
        Template = "dskd",
        K = 4,
    };

    /// <summary>Ten rows of varying length; row 3 has no scored position.</summary>
    internal static IReadOnlyList<TeacherCacheExample> Examples(int count = 10)
    {
        var result = new List<TeacherCacheExample>();
        for (var r = 0; r < count; r++)
        {
            var length = 3 + (r * 7 % 5);
            var ids = Enumerable.Range(0, length).Select(i => ((r * 13) + (i * 5)) % 50).ToArray();
            var first = r == 3 ? length : 1 + (r % 2);
            result.Add(new TeacherCacheExample(r, ids, [.. Enumerable.Range(first, length - first)]));
        }

        return result;
    }

    internal static string TempDir()
    {
        var dir = Path.Combine(Path.GetTempPath(), "distill-cache-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        return dir;
    }

    /// <summary>Every file of a folder, name → bytes.</summary>
    internal static SortedDictionary<string, byte[]> Files(string dir) =>
        new(Directory.GetFiles(dir).ToDictionary(f => Path.GetFileName(f), File.ReadAllBytes), StringComparer.Ordinal);

    internal static void AssertSameFiles(string expectedDir, string actualDir)
    {
        var a = Files(expectedDir);
        var b = Files(actualDir);
        Assert.Equal(a.Keys, b.Keys);
        foreach (var (name, bytes) in a)
        {
            Assert.True(bytes.AsSpan().SequenceEqual(b[name]), $"{name} differs");
        }
    }
}

/// <summary>A deterministic teacher: values depend only on (row, position), with exact −inf tails and subnormals.</summary>
internal sealed class FakeProducer(int failAfterCalls = int.MaxValue) : ITopKProducer
{
    public int Calls { get; private set; }

    public string Description => "fake";

    public Task<IReadOnlyList<TopKSequence>> ProduceAsync(IReadOnlyList<TeacherCacheExample> examples, int k, CancellationToken cancellationToken)
    {
        if (++Calls > failAfterCalls)
        {
            throw new IOException("teacher went away");
        }

        return Task.FromResult<IReadOnlyList<TopKSequence>>([.. examples.Select(e => Values(e, k))]);
    }

    internal static TopKSequence Values(TeacherCacheExample e, int k)
    {
        var n = e.ScoredPositions.Count;
        var ids = new int[n * k];
        var lp = new float[n * k];
        var tail = new float[n];
        for (var j = 0; j < n; j++)
        {
            var rng = new Random((int)((e.Row * 1000) + e.ScoredPositions[j]));
            for (var x = 0; x < k; x++)
            {
                ids[(j * k) + x] = rng.Next(50);
                lp[(j * k) + x] = -(float)rng.NextDouble() * (x + 1);
            }

            tail[j] = j % 3 == 0 ? float.NegativeInfinity : j % 3 == 1 ? -1.401298E-45f : -(float)rng.NextDouble();
        }

        return new TopKSequence(ids, lp, tail);
    }
}
