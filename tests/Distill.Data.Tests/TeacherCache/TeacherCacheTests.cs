using Distill.Models;
using static TorchSharp.torch;

namespace Distill.Data.Tests.TeacherCache;

/// <summary>Round trips, resume, multi-worker runs, validation errors, the cached ITeacher and the local-model driver.</summary>
public sealed class TeacherCacheTests : IDisposable
{
    private readonly List<string> dirs = [];

    public void Dispose()
    {
        foreach (var d in dirs)
        {
            Directory.Delete(d, recursive: true);
        }
    }

    private string Dir()
    {
        var d = CacheTestData.TempDir();
        dirs.Add(d);
        return d;
    }

    private static readonly TeacherCacheWriterOptions Chunks3 = new() { RowsPerChunk = 3, BatchSize = 2 };

    private async Task<string> SingleRun()
    {
        var dir = Dir();
        var writer = new TeacherCacheWriter(dir, CacheTestData.Identity, CacheTestData.Examples(), Chunks3);
        Assert.Equal(4, await writer.WriteChunksAsync(new FakeProducer()));
        TeacherCacheWriter.Merge(dir);
        return dir;
    }

    [Fact]
    public async Task RoundTrip_EveryRow_IsBitIdentical()
    {
        var dir = await SingleRun();
        using var reader = TeacherCacheReader.Open(dir, verifyChecksums: true);
        Assert.Equal(10, reader.Manifest.RowCount);
        Assert.Equal(4, reader.Manifest.Chunks.Count);
        foreach (var e in CacheTestData.Examples())
        {
            var expected = FakeProducer.Values(e, 4);
            var (positions, actual) = reader.ReadRow((int)e.Row);
            Assert.Equal(e.ScoredPositions, positions);
            Assert.Equal(expected.Ids, actual.Ids);
            Assert.Equal(expected.LogProbs.Select(BitConverter.SingleToInt32Bits), actual.LogProbs.Select(BitConverter.SingleToInt32Bits));
            Assert.Equal(expected.LogTailMass.Select(BitConverter.SingleToInt32Bits), actual.LogTailMass.Select(BitConverter.SingleToInt32Bits));
            Assert.True(reader.TryFindRow(e.InputIds, e.ScoredPositions, out var row));
            Assert.Equal(e.Row, row);
        }
    }

    [Fact]
    public async Task SingleRun_FileBytes_MatchTheFormatsPinnedHashes()
    {
        // SHA-256 of every file the fake teacher's cache holds, as written before the pipelined writer: a change to the
        // writer's speed must not change a single byte (older caches stay valid and resumable).
        var dir = await SingleRun();
        var actual = CacheTestData.Files(dir).ToDictionary(f => f.Key, f => Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(f.Value)));
        Assert.Equal(PinnedHashes.Keys.Order(StringComparer.Ordinal), actual.Keys.Order(StringComparer.Ordinal));
        foreach (var (name, hash) in PinnedHashes)
        {
            Assert.True(hash == actual[name], $"{name}: SHA-256 {actual[name]}, pinned {hash}");
        }
    }

    private static readonly Dictionary<string, string> PinnedHashes = new(StringComparer.Ordinal)
    {
        ["chunk-00000.arrow"] = "80a637b672bb3f4d7621c2eebabeadf54afa7aaca6926a66a03423c836c6d041",
        ["chunk-00000.json"] = "5eb8783802330f1bd9d13ca62ac1f00d74551a3eb1612b32bda5940666ea4a18",
        ["chunk-00001.arrow"] = "ea2453ae4461b20f3ab7e4200eadc6bb9963885b1ecdea35799ee9319913d18a",
        ["chunk-00001.json"] = "c9355304f95d1d07d91b5aabad7d281dff823fee1a6f3c0d09e296cc42f20ee0",
        ["chunk-00002.arrow"] = "37d386b38645504424cc2ba8200a7819fab3eb938afefb01bc4e0fecb8c37693",
        ["chunk-00002.json"] = "f429e228e6d039ee597d89945a23ac3a0999d76a0361f4a98beba09d99467587",
        ["chunk-00003.arrow"] = "45a1f526264d30188ab85454e3bb08b2e80bcad11c52cc93885734246f6a9e71",
        ["chunk-00003.json"] = "50b951985a3dc8305a3603354225e31c81838a34af8f7ca7fe3e7a8e23609de5",
        ["index.arrow"] = "09affdc247f15667e8f83ecd77ff2accf1efc3d12438f5d4e33e9a6bac68176e",
        ["manifest.json"] = "3485d908d627dfc66bc70fce232c3b3ccf847781ced3672eb78f4ab1b8bfb7aa",
    };

    [Fact]
    public async Task ResumedRun_AfterFailure_WritesSameFilesAsSingleRun()
    {
        var single = await SingleRun();
        var dir = Dir();
        var writer = new TeacherCacheWriter(dir, CacheTestData.Identity, CacheTestData.Examples(), Chunks3);
        // 2 rows per call, 3 rows per chunk: chunk 0 takes calls 1-2, chunk 1 calls 3-4; call 5 fails inside chunk 2.
        await Assert.ThrowsAsync<IOException>(() => writer.WriteChunksAsync(new FakeProducer(failAfterCalls: 4)));
        Assert.True(File.Exists(Path.Combine(dir, "chunk-00001.json")));
        Assert.False(File.Exists(Path.Combine(dir, "chunk-00002.arrow")));
        Assert.Empty(Directory.GetFiles(dir, "*.tmp*"));
        var resumed = new FakeProducer();
        Assert.Equal(2, await writer.WriteChunksAsync(resumed));
        Assert.Equal(3, resumed.Calls); // chunks 2 (2 calls) and 3 (1 call) only
        TeacherCacheWriter.Merge(dir);
        CacheTestData.AssertSameFiles(single, dir);
    }

    [Fact]
    public async Task BackgroundChunkWrite_Failure_PropagatesAndResumeCompletes()
    {
        var single = await SingleRun();
        var dir = Dir();
        // A folder where chunk 1's file must go: its write (on the background task, while chunk 2 is produced) fails.
        Directory.CreateDirectory(Path.Combine(dir, "chunk-00001.arrow"));
        var writer = new TeacherCacheWriter(dir, CacheTestData.Identity, CacheTestData.Examples(), Chunks3);
        await Assert.ThrowsAnyAsync<IOException>(() => writer.WriteChunksAsync(new FakeProducer()));
        Assert.True(File.Exists(Path.Combine(dir, "chunk-00000.json")));
        Assert.False(File.Exists(Path.Combine(dir, "chunk-00001.json")));
        Assert.False(File.Exists(Path.Combine(dir, "chunk-00002.json"))); // produced, but not written after the failure
        Assert.Empty(Directory.GetFiles(dir, "*.tmp"));
        Directory.Delete(Path.Combine(dir, "chunk-00001.arrow"));
        var resumed = new FakeProducer();
        Assert.Equal(3, await writer.WriteChunksAsync(resumed));
        TeacherCacheWriter.Merge(dir);
        CacheTestData.AssertSameFiles(single, dir);
    }

    [Fact]
    public async Task TwoWorkers_DisjointRanges_MergeToSameFilesAsSingleRun()
    {
        var single = await SingleRun();
        var dir = Dir();
        var examples = CacheTestData.Examples();
        var w1 = new TeacherCacheWriter(dir, CacheTestData.Identity, examples, Chunks3 with { FirstChunk = 2 });
        var w0 = new TeacherCacheWriter(dir, CacheTestData.Identity, examples, Chunks3 with { FirstChunk = 0, ChunkCount = 2 });
        await Task.WhenAll(Task.Run(() => w1.WriteChunksAsync(new FakeProducer())), Task.Run(() => w0.WriteChunksAsync(new FakeProducer())));
        TeacherCacheWriter.Merge(dir);
        CacheTestData.AssertSameFiles(single, dir);
    }

    [Fact]
    public async Task Merge_MissingChunk_NamesIt()
    {
        var dir = Dir();
        await new TeacherCacheWriter(dir, CacheTestData.Identity, CacheTestData.Examples(), Chunks3 with { ChunkCount = 2 }).WriteChunksAsync(new FakeProducer());
        var e = Assert.Throws<InvalidDataException>(() => TeacherCacheWriter.Merge(dir));
        Assert.Contains("chunks 2, 3 of 4 are missing", e.Message, StringComparison.Ordinal);
        var open = Assert.Throws<InvalidDataException>(() => TeacherCacheReader.Open(dir));
        Assert.Contains("manifest.json is missing", open.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Writer_ExistingChunksOfAnotherCache_RefusesNamingTheField()
    {
        var dir = await SingleRun();
        var other = new TeacherCacheWriter(dir, CacheTestData.Identity with { K = 8 }, CacheTestData.Examples(), Chunks3);
        var e = await Assert.ThrowsAsync<InvalidDataException>(() => other.WriteChunksAsync(new FakeProducer()));
        Assert.Contains("k '4' vs '8'", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task CorruptChunk_MergeAndReaderReportTheFile()
    {
        var dir = await SingleRun();
        var chunk = Path.Combine(dir, "chunk-00001.arrow");
        var bytes = File.ReadAllBytes(chunk);
        bytes[bytes.Length / 2] ^= 0x40;
        File.WriteAllBytes(chunk, bytes);
        var merge = Assert.Throws<InvalidDataException>(() => TeacherCacheWriter.Merge(dir));
        Assert.Contains("chunk-00001.arrow: SHA-256", merge.Message, StringComparison.Ordinal);
        var verify = Assert.Throws<InvalidDataException>(() => TeacherCacheReader.Open(dir, verifyChecksums: true));
        Assert.Contains("chunk-00001.arrow", verify.Message, StringComparison.Ordinal);

        File.WriteAllBytes(chunk, bytes[..(bytes.Length / 2)]); // truncated
        var truncated = Assert.Throws<InvalidDataException>(() => TeacherCacheReader.Open(dir));
        Assert.Contains("chunk-00001.arrow", truncated.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Open_MismatchedExpectation_NamesFieldAndBothValues()
    {
        var dir = await SingleRun();
        var datasetHash = TeacherCacheHashes.Dataset(CacheTestData.Examples());
        using (TeacherCacheReader.Open(dir, new TeacherCacheExpectation { DatasetHash = datasetHash, TokenizerHash = "tok0", Template = "dskd", K = 4, Teacher = "fake-teacher" }))
        {
        }

        var tok = Assert.Throws<InvalidDataException>(() => TeacherCacheReader.Open(dir, new TeacherCacheExpectation { TokenizerHash = "tok1" }));
        Assert.Contains("tokenizer_hash mismatch: the cache has 'tok0', this run expects 'tok1'", tok.Message, StringComparison.Ordinal);
        var k = Assert.Throws<InvalidDataException>(() => TeacherCacheReader.Open(dir, new TeacherCacheExpectation { K = 64 }));
        Assert.Contains("k mismatch", k.Message, StringComparison.Ordinal);
        var data = Assert.Throws<InvalidDataException>(() => TeacherCacheReader.Open(dir, new TeacherCacheExpectation { DatasetHash = TeacherCacheHashes.Dataset(CacheTestData.Examples(9)) }));
        Assert.Contains("dataset_hash mismatch", data.Message, StringComparison.Ordinal);
        var template = Assert.Throws<InvalidDataException>(() => TeacherCacheReader.Open(dir, new TeacherCacheExpectation { Template = "chatml" }));
        Assert.Contains("template mismatch", template.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(PaddingSide.Right)]
    [InlineData(PaddingSide.Left)]
    public async Task CachedTeacher_PaddedBatchInAnyOrder_ReturnsCachedValuesAtScoredPositions(PaddingSide side)
    {
        var dir = await SingleRun();
        using var teacher = new CachedTopKTeacher(TeacherCacheReader.Open(dir));
        Assert.Equal(TeacherCapabilities.SparseTopK, ((ITeacher)teacher).Info.Capabilities);
        Assert.Equal("tok0", ((ITeacher)teacher).Info.TokenizerId);
        using var scope = NewDisposeScope();
        var examples = CacheTestData.Examples();
        var rows = new[] { 7, 0, 3, 4 };
        var batch = Collate([.. rows.Select(r => examples[r])], side);
        var output = teacher.Infer(batch, new ObjectiveRequirements { NeedsTeacherLogits = false, AcceptsSparseTopK = true });
        var width = batch.InputIds.shape[1];
        Assert.Equal(new[] { 4L, width, 4L }, output.TopKIndices!.shape);
        for (var b = 0; b < rows.Length; b++)
        {
            var e = examples[rows[b]];
            var pad = side == PaddingSide.Left ? width - e.InputIds.Count : 0;
            var expected = FakeProducer.Values(e, 4);
            for (var j = 0; j < e.ScoredPositions.Count; j++)
            {
                var t = pad + e.ScoredPositions[j];
                Assert.Equal(expected.Ids.Skip(j * 4).Take(4).Select(x => (long)x), output.TopKIndices[b, t].data<long>().ToArray());
                Assert.Equal(expected.LogProbs.Skip(j * 4).Take(4), output.TopKLogProbs![b, t].data<float>().ToArray());
                Assert.Equal(expected.LogTailMass[j], output.TopKLogTailMass![b, t].item<float>());
            }

            var scored = e.ScoredPositions.Select(p => p + pad).ToHashSet();
            for (var t = 0; t < width; t++)
            {
                if (!scored.Contains(t))
                {
                    Assert.Equal(new long[] { 0, 1, 2, 3 }, output.TopKIndices[b, t].data<long>().ToArray());
                    Assert.True(float.IsNegativeInfinity(output.TopKLogTailMass![b, t].item<float>()));
                }
            }
        }
    }

    [Fact]
    public async Task CachedTeacher_ExampleNotInCache_ThrowsClearError()
    {
        var dir = await SingleRun();
        using var teacher = new CachedTopKTeacher(TeacherCacheReader.Open(dir));
        using var scope = NewDisposeScope();
        var e = CacheTestData.Examples()[5];
        var changed = e with { InputIds = [.. e.InputIds.Select((x, i) => i == 0 ? x + 1 : x)] };
        var error = Assert.Throws<InvalidDataException>(() => teacher.Infer(Collate([changed], PaddingSide.Right), new ObjectiveRequirements { NeedsTeacherLogits = false }));
        Assert.Contains("Batch row 0", error.Message, StringComparison.Ordinal);
        Assert.Contains("is not in the teacher cache", error.Message, StringComparison.Ordinal);
        var logits = Assert.Throws<InvalidOperationException>(() => teacher.Infer(Collate([e], PaddingSide.Right), new ObjectiveRequirements()));
        Assert.Contains("full teacher logits", logits.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task BuildAsync_LocalModelOverBundledDataset_CachesTheModelsTopK()
    {
        using var scope = NewDisposeScope();
        var tokenizer = BundledData.TokenizerA();
        var texts = new[] { new TextExample("Q: 1+1?", " 2"), new TextExample("Say hi:", " hello there"), new TextExample("A:", " b") };
        var dataset = TokenizedDataset.Create(texts, tokenizer, teacher: null);
        var model = AutoCausalLM.FromConfig(new Gpt2Config
        {
            ModelType = "gpt2", VocabSize = tokenizer.VocabSize, HiddenSize = 16, NumHiddenLayers = 1, NumAttentionHeads = 2, MaxPositionEmbeddings = 64,
        }, seed: 3);
        var dir = Dir();
        var identity = CacheTestData.Identity with { Teacher = "tiny-gpt2", TokenizerHash = TeacherCacheHashes.Tokenizer(tokenizer), K = 5 };
        var progress = new List<TeacherCacheProgress>();
        var manifest = await TeacherCacheWriter.BuildAsync(dir, identity, dataset, new LocalModelTopKProducer(model), new TeacherCacheWriterOptions { RowsPerChunk = 2, BatchSize = 2 }, new Progress<TeacherCacheProgress>(progress.Add));
        Assert.Equal(2, manifest.Chunks.Count);

        var examples = TeacherCacheExample.FromDataset(dataset);
        using var teacher = new CachedTopKTeacher(TeacherCacheReader.Open(dir, new TeacherCacheExpectation
        {
            DatasetHash = TeacherCacheHashes.Dataset(examples), TokenizerHash = TeacherCacheHashes.Tokenizer(tokenizer), K = 5,
        }));
        using var batch = dataset.Collate([0, 1, 2]);
        var cached = teacher.Infer(batch, new ObjectiveRequirements { NeedsTeacherLogits = false });
        using var noGrad = no_grad();
        var logProbs = model.Forward(new CausalLMInput { InputIds = batch.InputIds, AttentionMask = batch.AttentionMask }).Logits!.log_softmax(-1);
        var (values, indices) = logProbs.topk(5);
        var mask = TokenReduction.ValidMask(batch.Labels);
        Assert.True(mask.sum().item<long>() > 0);
        Assert.True(cached.TopKIndices!.eq(indices).all(-1).logical_or(mask.logical_not()).all().item<bool>());
        Assert.True((cached.TopKLogProbs! - values).abs().amax(-1).masked_fill(mask.logical_not(), 0).max().item<float>() < 1e-5f);
        // tail = log(1 − Σ top-k p).
        var tail = values.exp().sum(-1).neg().log1p();
        Assert.True((cached.TopKLogTailMass! - tail).abs().masked_fill(mask.logical_not(), 0).max().item<float>() < 1e-4f);
    }

    private static DistillationBatch Collate(IReadOnlyList<TeacherCacheExample> examples, PaddingSide side)
    {
        var width = examples.Max(e => e.InputIds.Count);
        var ids = new long[examples.Count * width];
        var mask = new long[examples.Count * width];
        var labels = Enumerable.Repeat(DistillationBatch.IgnoreIndex, examples.Count * width).ToArray();
        for (var b = 0; b < examples.Count; b++)
        {
            var e = examples[b];
            var pad = side == PaddingSide.Left ? width - e.InputIds.Count : 0;
            for (var i = 0; i < e.InputIds.Count; i++)
            {
                ids[(b * width) + pad + i] = e.InputIds[i];
                mask[(b * width) + pad + i] = 1;
            }

            foreach (var p in e.ScoredPositions)
            {
                labels[(b * width) + pad + p] = 1;
            }
        }

        return new DistillationBatch
        {
            InputIds = tensor(ids, [examples.Count, width]),
            AttentionMask = tensor(mask, [examples.Count, width]),
            Labels = tensor(labels, [examples.Count, width]),
        };
    }
}
