using System.Buffers;
using System.IO.MemoryMappedFiles;
using Apache.Arrow;
using Apache.Arrow.Ipc;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Distill.Data;

/// <summary>What the training run expects of a cache; <see langword="null"/> fields are not checked.</summary>
public sealed record TeacherCacheExpectation
{
    /// <summary>Gets the expected dataset hash (<see cref="TeacherCacheHashes.Dataset"/> of the training examples).</summary>
    public string? DatasetHash { get; init; }

    /// <summary>Gets the expected tokenizer hash (<see cref="TeacherCacheHashes.Tokenizer"/> of the student's tokenizer).</summary>
    public string? TokenizerHash { get; init; }

    /// <summary>Gets the expected template name.</summary>
    public string? Template { get; init; }

    /// <summary>Gets the expected k.</summary>
    public int? K { get; init; }

    /// <summary>Gets the expected teacher name.</summary>
    public string? Teacher { get; init; }

    /// <summary>Gets the expected tokenisation of the rows (<see cref="TeacherCacheTokens.Teacher"/> for cross-tokenizer objectives).</summary>
    public TeacherCacheTokens? Tokens { get; init; }
}

/// <summary>
/// Reads a merged teacher cache: the manifest and index once, every chunk memory-mapped once at open (no file opens
/// afterwards). Lookups are by row or by example content (input ids + scored positions).
/// </summary>
/// <remarks>Thread-safe for concurrent reads after construction. Dispose to unmap the chunks.</remarks>
public sealed class TeacherCacheReader : IDisposable
{
    private readonly MappedChunk[] chunks;
    private readonly Dictionary<(long Hi, long Lo), int> rowByKey;
    private readonly int[] chunkOf;
    private readonly int[] offsets;
    private readonly int[] counts;

    private TeacherCacheReader(string directory, TeacherCacheManifest manifest, MappedChunk[] chunks, Dictionary<(long, long), int> rowByKey, int[] chunkOf, int[] offsets, int[] counts)
    {
        Directory = directory;
        Manifest = manifest;
        this.chunks = chunks;
        this.rowByKey = rowByKey;
        this.chunkOf = chunkOf;
        this.offsets = offsets;
        this.counts = counts;
    }

    /// <summary>Gets the cache folder.</summary>
    public string Directory { get; }

    /// <summary>Gets the manifest.</summary>
    public TeacherCacheManifest Manifest { get; }

    /// <summary>Gets k.</summary>
    public int K => Manifest.K;

    /// <summary>Opens the cache in <paramref name="directory"/> and checks it against <paramref name="expected"/>.</summary>
    /// <param name="directory">A folder that <see cref="TeacherCacheWriter.Merge"/> completed.</param>
    /// <param name="expected">What the run expects (dataset, tokenizer, template, k, teacher).</param>
    /// <param name="verifyChecksums">Whether to hash every chunk file against the manifest (reads the whole cache once).</param>
    /// <param name="logger">Log.</param>
    /// <returns>The reader.</returns>
    /// <exception cref="InvalidDataException">The cache is incomplete, corrupt, or does not match <paramref name="expected"/>; the message names the field and both values.</exception>
    public static TeacherCacheReader Open(string directory, TeacherCacheExpectation? expected = null, bool verifyChecksums = false, ILogger? logger = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        var manifestPath = Path.Combine(directory, TeacherCacheSchema.ManifestFile);
        if (!File.Exists(manifestPath))
        {
            throw new InvalidDataException($"{directory} is not a complete teacher cache: {TeacherCacheSchema.ManifestFile} is missing (run {nameof(TeacherCacheWriter)}.{nameof(TeacherCacheWriter.Merge)} after the writers finish).");
        }

        var manifest = TeacherCacheManifest.Read(manifestPath);
        if (expected is not null)
        {
            Expect(manifestPath, "dataset_hash", expected.DatasetHash, manifest.DatasetHash, "the training examples differ from the cached ones (other data, truncation or label mask)");
            Expect(manifestPath, "tokenizer_hash", expected.TokenizerHash, manifest.TokenizerHash, "the tokenizer of the cached rows (the student's, or the teacher's for a teacher-token cache) is not the one the cache was written with");
            Expect(manifestPath, "template", expected.Template, manifest.Template, "a different prompt template");
            Expect(manifestPath, "k", expected.K?.ToString(System.Globalization.CultureInfo.InvariantCulture), manifest.K.ToString(System.Globalization.CultureInfo.InvariantCulture), "a different top-k width");
            Expect(manifestPath, "teacher", expected.Teacher, manifest.Teacher, "a different teacher");
            Expect(manifestPath, "tokens", expected.Tokens is { } side ? TokensName(side) : null, TokensName(manifest.Tokens), "rows in the other model's tokenisation: same-tokenizer objectives read student tokens, cross-tokenizer ones (uld) the teacher's");
        }

        if (manifest.Chunks.Count != manifest.ChunkCount || manifest.Index is null)
        {
            throw new InvalidDataException($"{manifestPath}: lists {manifest.Chunks.Count} chunks for {manifest.RowCount} rows at {manifest.RowsPerChunk} per chunk (expected {manifest.ChunkCount}) or no index.");
        }

        var n = (int)manifest.RowCount;
        var chunkOf = new int[n];
        var offsets = new int[n];
        var counts = new int[n];
        var rowByKey = new Dictionary<(long, long), int>(n);
        var indexPath = Path.Combine(directory, manifest.Index);
        try
        {
            using var stream = File.OpenRead(indexPath);
            using var reader = new ArrowFileReader(stream);
            TeacherCacheSchema.Check(reader.Schema, TeacherCacheSchema.Index(), indexPath);
            using var index = reader.ReadNextRecordBatch() ?? throw new InvalidDataException($"{indexPath}: no record batch.");
            if (index.Length != n)
            {
                throw new InvalidDataException($"{indexPath}: {index.Length} rows; the manifest says {n}.");
            }

            var hi = ((Int64Array)index.Column(TeacherCacheSchema.KeyHi)).Values;
            var lo = ((Int64Array)index.Column(TeacherCacheSchema.KeyLo)).Values;
            ((Int32Array)index.Column(TeacherCacheSchema.Chunk)).Values.CopyTo(chunkOf);
            ((Int32Array)index.Column(TeacherCacheSchema.Offset)).Values.CopyTo(offsets);
            ((Int32Array)index.Column(TeacherCacheSchema.Count)).Values.CopyTo(counts);
            for (var r = 0; r < n; r++)
            {
                rowByKey.TryAdd((hi[r], lo[r]), r); // duplicate examples share one key and identical values
            }
        }
        catch (Exception e) when (e is IOException or InvalidCastException or ArgumentException or InvalidOperationException && e is not FileNotFoundException)
        {
            throw new InvalidDataException($"{indexPath}: cannot read the cache index ({e.Message}).", e);
        }

        var mapped = new List<MappedChunk>(manifest.Chunks.Count);
        try
        {
            foreach (var c in manifest.Chunks)
            {
                mapped.Add(MappedChunk.Open(Path.Combine(directory, c.File), c, manifest.K, verifyChecksums));
            }
        }
        catch
        {
            mapped.ForEach(m => m.Dispose());
            throw;
        }

        for (var r = 0; r < n; r++)
        {
            if (chunkOf[r] < 0 || chunkOf[r] >= mapped.Count || offsets[r] < 0 || counts[r] < 0 || (long)offsets[r] + counts[r] > mapped[chunkOf[r]].Length)
            {
                throw new InvalidDataException($"{indexPath}: row {r} points at chunk {chunkOf[r]} records [{offsets[r]}, +{counts[r]}), outside the chunk.");
            }
        }

        Log.CacheOpened(logger ?? NullLogger.Instance, directory, manifest.Teacher, manifest.K, manifest.RowCount, mapped.Count);
        return new TeacherCacheReader(directory, manifest, [.. mapped], rowByKey, chunkOf, offsets, counts);
    }

    internal static string TokensName(TeacherCacheTokens tokens) => tokens == TeacherCacheTokens.Teacher ? "teacher" : "student";

    private static void Expect(string path, string field, string? expected, string actual, string meaning)
    {
        if (expected is not null && expected != actual)
        {
            throw new InvalidDataException($"{path}: {field} mismatch: the cache has '{actual}', this run expects '{expected}' ({meaning}). Rebuild the cache or point to the right one.");
        }
    }

    /// <summary>Finds the row cached for an example with these input ids and scored positions.</summary>
    /// <param name="inputIds">Input ids without padding.</param>
    /// <param name="scoredPositions">Ascending scored positions.</param>
    /// <param name="row">The row, or −1.</param>
    /// <returns>Whether the example is in the cache.</returns>
    public bool TryFindRow(IReadOnlyList<int> inputIds, IReadOnlyList<int> scoredPositions, out int row)
    {
        if (rowByKey.TryGetValue(TeacherCacheHashes.Key(inputIds, scoredPositions), out row))
        {
            return true;
        }

        row = -1;
        return false;
    }

    /// <summary>Gets the number of scored positions cached for <paramref name="row"/>.</summary>
    public int PositionCount(int row) => counts[CheckRow(row)];

    /// <summary>Copies the cached values of <paramref name="row"/> into the destinations (views over the memory-mapped chunk; no allocation).</summary>
    /// <param name="row">The dataset row.</param>
    /// <param name="positions">[n] receives the scored positions.</param>
    /// <param name="ids">[n·k] receives the ids.</param>
    /// <param name="logProbs">[n·k] receives the log-probabilities.</param>
    /// <param name="logTailMass">[n] receives the log tail masses.</param>
    public void CopyRow(int row, Span<int> positions, Span<int> ids, Span<float> logProbs, Span<float> logTailMass)
    {
        CheckRow(row);
        var chunk = chunks[chunkOf[row]];
        int start = offsets[row], n = counts[row], k = K;
        chunk.Positions.Slice(start, n).CopyTo(positions);
        chunk.Ids.Slice(start * k, n * k).CopyTo(ids);
        chunk.LogProbs.Slice(start * k, n * k).CopyTo(logProbs);
        chunk.Tails.Slice(start, n).CopyTo(logTailMass);
    }

    /// <summary>Reads the cached values of <paramref name="row"/> into new arrays (for tests and export).</summary>
    public (int[] Positions, TopKSequence Values) ReadRow(int row)
    {
        var n = PositionCount(row);
        var result = (new int[n], new TopKSequence(new int[n * K], new float[n * K], new float[n]));
        CopyRow(row, result.Item1, result.Item2.Ids, result.Item2.LogProbs, result.Item2.LogTailMass);
        return result;
    }

    private int disposed;

    private int CheckRow(int row)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(row);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(row, counts.Length);
        return row;
    }

    /// <inheritdoc />
    /// <remarks>Idempotent: a DI container that registered the reader's owner under two service types disposes it twice.</remarks>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref disposed, 1) != 0)
        {
            return;
        }

        foreach (var c in chunks)
        {
            c.Dispose();
        }
    }

    /// <summary>One chunk file, memory-mapped; the Arrow arrays are views over the mapping (no copy).</summary>
    private sealed unsafe class MappedChunk : IDisposable
    {
        private readonly MemoryMappedFile file;
        private readonly MemoryMappedViewAccessor view;
        private readonly RecordBatch batch;
        private readonly Int32Array positions;
        private readonly Int32Array ids;
        private readonly FloatArray logProbs;
        private readonly FloatArray tails;

        private MappedChunk(MemoryMappedFile file, MemoryMappedViewAccessor view, RecordBatch batch)
        {
            this.file = file;
            this.view = view;
            this.batch = batch;
            positions = (Int32Array)batch.Column(TeacherCacheSchema.Position);
            ids = (Int32Array)((FixedSizeListArray)batch.Column(TeacherCacheSchema.TopKIds)).Values;
            logProbs = (FloatArray)((FixedSizeListArray)batch.Column(TeacherCacheSchema.TopKLogProbs)).Values;
            tails = (FloatArray)batch.Column(TeacherCacheSchema.TailLogMass);
        }

        public int Length => batch.Length;

        public ReadOnlySpan<int> Positions => positions.Values;

        public ReadOnlySpan<int> Ids => ids.Values;

        public ReadOnlySpan<float> LogProbs => logProbs.Values;

        public ReadOnlySpan<float> Tails => tails.Values;

        public static MappedChunk Open(string path, TeacherCacheChunk entry, int k, bool verifyChecksum)
        {
            if (!File.Exists(path))
            {
                throw new InvalidDataException($"{path}: chunk file listed in the manifest is missing.");
            }

            if (verifyChecksum && TeacherCacheHashes.File(path) != entry.Sha256)
            {
                throw new InvalidDataException($"{path}: SHA-256 does not match the manifest ({entry.Sha256}); the file is corrupt.");
            }

            var length = new FileInfo(path).Length;
            if (length < 16 || length >= int.MaxValue)
            {
                throw new InvalidDataException($"{path}: {length} bytes is not a valid chunk file size.");
            }

            var file = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
            MemoryMappedViewAccessor? view = null;
            try
            {
                view = file.CreateViewAccessor(0, length, MemoryMappedFileAccess.Read);
                byte* pointer = null;
                view.SafeMemoryMappedViewHandle.AcquirePointer(ref pointer);
                pointer += view.PointerOffset;
                var memory = new PointerMemory(pointer, (int)length).Memory;
                var span = memory.Span;
                // Arrow IPC file: "ARROW1" + 2 padding bytes, the stream (schema, record batches), footer, "ARROW1".
                if (!span[..6].SequenceEqual("ARROW1"u8) || !span[^6..].SequenceEqual("ARROW1"u8))
                {
                    throw new InvalidDataException($"{path}: not an Arrow IPC file (magic bytes missing; truncated or corrupt).");
                }

                RecordBatch batch;
                try
                {
                    using var reader = new ArrowStreamReader(memory[8..]);
                    TeacherCacheSchema.Check(reader.Schema, TeacherCacheSchema.Chunks(k), path);
                    batch = reader.ReadNextRecordBatch() ?? throw new InvalidDataException($"{path}: no record batch.");
                }
                catch (Exception e) when (e is not InvalidDataException)
                {
                    throw new InvalidDataException($"{path}: cannot read the Arrow chunk ({e.Message}).", e);
                }

                if (batch.Length != entry.PositionCount)
                {
                    throw new InvalidDataException($"{path}: {batch.Length} records; the manifest says {entry.PositionCount}.");
                }

                return new MappedChunk(file, view, batch);
            }
            catch
            {
                view?.SafeMemoryMappedViewHandle.ReleasePointer();
                view?.Dispose();
                file.Dispose();
                throw;
            }
        }

        public void Dispose()
        {
            batch.Dispose();
            view.SafeMemoryMappedViewHandle.ReleasePointer();
            view.Dispose();
            file.Dispose();
        }
    }

    /// <summary>A <see cref="Memory{T}"/> over mapped memory (owned by the view, never freed here).</summary>
    private sealed unsafe class PointerMemory(byte* pointer, int length) : MemoryManager<byte>
    {
        public override Span<byte> GetSpan() => new(pointer, length);

        public override MemoryHandle Pin(int elementIndex = 0) => new(pointer + elementIndex);

        public override void Unpin()
        {
        }

        protected override void Dispose(bool disposing)
        {
        }
    }
}
