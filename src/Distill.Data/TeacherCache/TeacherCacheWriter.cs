using System.Diagnostics;
using Apache.Arrow;
using Apache.Arrow.Ipc;
using Distill.IO;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Distill.Data;

/// <summary>Which chunks a writer fills and how it feeds the producer.</summary>
public sealed record TeacherCacheWriterOptions
{
    /// <summary>Gets the number of dataset rows per chunk file.</summary>
    /// <value>The default is 1024.</value>
    /// <remarks>Every worker of one cache must use the same value; a chunk file must stay under 2 GiB.</remarks>
    public int RowsPerChunk { get; init; } = 1024;

    /// <summary>Gets the number of rows per producer call (a model batch or a group of concurrent server requests).</summary>
    /// <value>The default is 8.</value>
    public int BatchSize { get; init; } = 8;

    /// <summary>Gets the first chunk this writer fills (workers split a cache by disjoint chunk ranges).</summary>
    /// <value>The default is 0.</value>
    public int FirstChunk { get; init; }

    /// <summary>Gets the number of chunks this writer fills, or <see langword="null"/> for all from <see cref="FirstChunk"/> on.</summary>
    public int? ChunkCount { get; init; }
}

/// <summary>Progress of a cache writer.</summary>
/// <param name="ChunksDone">Chunks finished in this writer's range (including ones found complete).</param>
/// <param name="ChunksTotal">Chunks in this writer's range.</param>
/// <param name="Positions">Scored positions computed so far by this run.</param>
/// <param name="Elapsed">Time since the run started.</param>
public readonly record struct TeacherCacheProgress(int ChunksDone, int ChunksTotal, long Positions, TimeSpan Elapsed);

/// <summary>
/// Fills a teacher cache folder: Arrow IPC chunk files of <see cref="TeacherCacheWriterOptions.RowsPerChunk"/> rows, each
/// written atomically with a JSON sidecar; <see cref="Merge"/> then validates every chunk and writes the index and
/// <c>manifest.json</c>.
/// </summary>
/// <remarks>
/// Resumable: a chunk whose sidecar and file exist and agree (identity, SHA-256) is skipped. Several writers (processes or
/// machines over a shared folder) may fill disjoint chunk ranges of one cache at once. Output bytes depend only on the
/// rows and the producer's values, so a resumed or split run writes the same files as a single run.
/// </remarks>
public sealed class TeacherCacheWriter
{
    private readonly string directory;
    private readonly IReadOnlyList<TeacherCacheExample> examples;
    private readonly TeacherCacheWriterOptions options;
    private readonly TeacherCacheManifest header;
    private readonly ILogger logger;

    /// <summary>Prepares a writer.</summary>
    /// <param name="directory">The cache folder (created if missing).</param>
    /// <param name="identity">Teacher, tokenizer, template and k.</param>
    /// <param name="examples">Every row of the dataset, in order (each worker passes all of them; it hashes them all and computes its range).</param>
    /// <param name="options">Chunking and range.</param>
    /// <param name="logger">Progress and throughput log.</param>
    public TeacherCacheWriter(string directory, TeacherCacheIdentity identity, IReadOnlyList<TeacherCacheExample> examples, TeacherCacheWriterOptions? options = null, ILogger? logger = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        ArgumentNullException.ThrowIfNull(identity);
        ArgumentNullException.ThrowIfNull(examples);
        this.options = options ?? new TeacherCacheWriterOptions();
        ArgumentOutOfRangeException.ThrowIfLessThan(this.options.RowsPerChunk, 1, nameof(options));
        ArgumentOutOfRangeException.ThrowIfLessThan(this.options.BatchSize, 1, nameof(options));
        ArgumentOutOfRangeException.ThrowIfLessThan(identity.K, 1, nameof(identity));
        for (var i = 0; i < examples.Count; i++)
        {
            var e = examples[i];
            if (e.Row != i)
            {
                throw new ArgumentException($"Cache example {i} has Row = {e.Row}; rows must be 0 … N − 1 in order.", nameof(examples));
            }

            for (var j = 0; j < e.ScoredPositions.Count; j++)
            {
                var p = e.ScoredPositions[j];
                if (p < 0 || p >= e.InputIds.Count || (j > 0 && p <= e.ScoredPositions[j - 1]))
                {
                    throw new ArgumentException($"Cache example {i}: scored positions must ascend within [0, {e.InputIds.Count}); found {p} at index {j}.", nameof(examples));
                }
            }
        }

        this.directory = directory;
        this.examples = examples;
        this.logger = logger ?? NullLogger.Instance;
        header = new TeacherCacheManifest
        {
            Teacher = identity.Teacher,
            TeacherConfigHash = identity.TeacherConfigHash,
            TokenizerHash = identity.TokenizerHash,
            Template = identity.Template,
            K = identity.K,
            Tokens = identity.Tokens,
            DatasetHash = TeacherCacheHashes.Dataset(examples),
            RowCount = examples.Count,
            RowsPerChunk = this.options.RowsPerChunk,
        };
        var total = header.ChunkCount;
        if (this.options.FirstChunk < 0 || this.options.FirstChunk > total || (this.options.ChunkCount is int c && (c < 0 || this.options.FirstChunk + c > total)))
        {
            throw new ArgumentOutOfRangeException(nameof(options), $"Chunk range [{this.options.FirstChunk}, +{this.options.ChunkCount}) is outside the cache's {total} chunks ({examples.Count} rows, {this.options.RowsPerChunk} per chunk).");
        }
    }

    /// <summary>Gets the identity and layout every chunk of this cache records.</summary>
    public TeacherCacheManifest Header => header;

    /// <summary>Fills the chunks of this writer's range that are not complete yet.</summary>
    /// <param name="producer">The teacher.</param>
    /// <param name="progress">Receives progress after each chunk.</param>
    /// <param name="cancellationToken">Stops after the current producer call; finished chunks stay.</param>
    /// <returns>The number of chunks written by this call (chunks found complete are not counted).</returns>
    public async Task<int> WriteChunksAsync(ITopKProducer producer, IProgress<TeacherCacheProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(producer);
        Directory.CreateDirectory(directory);
        var first = options.FirstChunk;
        var count = options.ChunkCount ?? (header.ChunkCount - first);
        var clock = Stopwatch.StartNew();
        long positions = 0;
        var written = 0;
        Log.CacheWriteStarted(logger, directory, producer.Description, first, first + count, header.ChunkCount, header.K);

        // Chunk c is serialised, written, synced and hashed on a background task while the producer computes chunk c + 1;
        // at most one write is in flight, and its failure surfaces before the next chunk is handed over.
        (Task<long> Write, int Chunk, Stopwatch Clock)? pending = null;
        async Task FinishPendingAsync()
        {
            if (pending is not { } p)
            {
                return;
            }

            pending = null;
            var chunkPositions = await p.Write.ConfigureAwait(false);
            positions += chunkPositions;
            written++;
            var seconds = Math.Max(p.Clock.Elapsed.TotalSeconds, 1e-9);
            Log.CacheChunkWritten(logger, p.Chunk, p.Chunk - first + 1, count, chunkPositions, chunkPositions / seconds, positions / Math.Max(clock.Elapsed.TotalSeconds, 1e-9));
            progress?.Report(new(p.Chunk - first + 1, count, positions, clock.Elapsed));
        }

        try
        {
            for (var c = first; c < first + count; c++)
            {
                if (IsComplete(c))
                {
                    await FinishPendingAsync().ConfigureAwait(false);
                    Log.CacheChunkSkipped(logger, c);
                    progress?.Report(new(c - first + 1, count, positions, clock.Elapsed));
                    continue;
                }

                var chunkClock = Stopwatch.StartNew();
                var columns = await ProduceChunkAsync(c, producer, cancellationToken).ConfigureAwait(false);
                await FinishPendingAsync().ConfigureAwait(false);
                var chunk = c;
                pending = (Task.Run(() => Persist(chunk, columns), CancellationToken.None), chunk, chunkClock);
            }

            await FinishPendingAsync().ConfigureAwait(false);
        }
        catch when (pending is { } p)
        {
            // The producer failed or was cancelled: let the previous chunk's write finish (finished chunks stay), then
            // report the producer's error.
            try
            {
                await p.Write.ConfigureAwait(false);
            }
            catch (Exception writeError) when (writeError is IOException or UnauthorizedAccessException or InvalidOperationException)
            {
                Log.CacheChunkWriteFailed(logger, p.Chunk, writeError);
            }

            throw;
        }

        return written;
    }

    private bool IsComplete(int chunk)
    {
        var sidecar = Path.Combine(directory, TeacherCacheSchema.ChunkSidecar(chunk));
        var file = Path.Combine(directory, TeacherCacheSchema.ChunkFile(chunk));
        if (!File.Exists(sidecar) || !File.Exists(file))
        {
            return false;
        }

        var existing = TeacherCacheManifest.Read(sidecar);
        if (existing.Header() != header)
        {
            throw new InvalidDataException($"{sidecar} was written for a different cache: {TeacherCacheWriter.Difference(existing, header)}. Use an empty folder or delete the old chunks.");
        }

        return existing.Chunks.Count == 1 && TeacherCacheHashes.File(file) == existing.Chunks[0].Sha256;
    }

    /// <summary>The columns of one chunk, filled in place from the producer's results (sizes known before the first call).</summary>
    private sealed record ChunkColumns(long FirstRow, int RowCount, long[] Rows, int[] Positions, int[] Ids, float[] LogProbs, float[] Tails, string[] Keys);

    private async Task<ChunkColumns> ProduceChunkAsync(int chunk, ITopKProducer producer, CancellationToken cancellationToken)
    {
        var k = header.K;
        var firstRow = (long)chunk * header.RowsPerChunk;
        var rowCount = (int)Math.Min(header.RowsPerChunk, header.RowCount - firstRow);
        var n = 0;
        for (var i = 0; i < rowCount; i++)
        {
            n += examples[(int)firstRow + i].ScoredPositions.Count;
        }

        var columns = new ChunkColumns(firstRow, rowCount, new long[n], new int[n], new int[(long)n * k], new float[(long)n * k], new float[n], new string[rowCount]);
        var at = 0;
        for (var start = 0; start < rowCount; start += options.BatchSize)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var batch = new TeacherCacheExample[Math.Min(options.BatchSize, rowCount - start)];
            for (var i = 0; i < batch.Length; i++)
            {
                batch[i] = examples[(int)firstRow + start + i];
            }

            var results = await producer.ProduceAsync(batch, k, cancellationToken).ConfigureAwait(false);
            if (results.Count != batch.Length)
            {
                throw new InvalidDataException($"{producer.Description} returned {results.Count} results for {batch.Length} rows (rows {batch[0].Row}…{batch[^1].Row}).");
            }

            for (var i = 0; i < batch.Length; i++)
            {
                var e = batch[i];
                var r = results[i];
                r.Check(e, k, producer.Description);
                var m = e.ScoredPositions.Count;
                columns.Rows.AsSpan(at, m).Fill(e.Row);
                for (var j = 0; j < m; j++)
                {
                    columns.Positions[at + j] = e.ScoredPositions[j];
                }

                r.Ids.CopyTo(columns.Ids.AsSpan(at * k));
                r.LogProbs.CopyTo(columns.LogProbs.AsSpan(at * k));
                r.LogTailMass.CopyTo(columns.Tails.AsSpan(at));
                at += m;
                var (hi, lo) = TeacherCacheHashes.Key(e.InputIds, e.ScoredPositions);
                columns.Keys[start + i] = $"{hi:x16}{lo:x16}";
            }
        }

        return columns;
    }

    /// <summary>Writes one chunk's Arrow file (atomically, hashed as it is written) and then its sidecar.</summary>
    private long Persist(int chunk, ChunkColumns columns)
    {
        var schema = TeacherCacheSchema.Chunks(header.K);
        var n = columns.Rows.Length;
        using var recordBatch = new RecordBatch(schema,
        [
            TeacherCacheSchema.Int64(columns.Rows),
            TeacherCacheSchema.Int32(columns.Positions),
            TeacherCacheSchema.List(schema, TeacherCacheSchema.TopKIds, TeacherCacheSchema.Int32(columns.Ids), n),
            TeacherCacheSchema.List(schema, TeacherCacheSchema.TopKLogProbs, TeacherCacheSchema.Float(columns.LogProbs), n),
            TeacherCacheSchema.Float(columns.Tails),
        ], n);
        var path = Path.Combine(directory, TeacherCacheSchema.ChunkFile(chunk));
        string? sha = null;
        long length = 0;
        AtomicFile.Write(path, stream =>
        {
            using var hashing = new HashingWriteStream(stream);
            using (var writer = new ArrowFileWriter(hashing, schema, leaveOpen: true))
            {
                writer.WriteRecordBatch(recordBatch);
                writer.WriteEnd();
            }

            sha = hashing.Sha256();
            length = hashing.Length;
        });
        if (length >= int.MaxValue)
        {
            throw new InvalidOperationException($"{path} is {length} bytes; chunk files must stay under 2 GiB. Lower {nameof(TeacherCacheWriterOptions.RowsPerChunk)} (now {header.RowsPerChunk}).");
        }

        var entry = new TeacherCacheChunk(TeacherCacheSchema.ChunkFile(chunk), chunk, columns.FirstRow, columns.RowCount, n, sha!);
        AtomicFile.WriteAllText(Path.Combine(directory, TeacherCacheSchema.ChunkSidecar(chunk)), (header with { Chunks = [entry], RowKeys = columns.Keys }).ToJson());
        return n;
    }

    /// <summary>
    /// Builds a whole cache in one process: runs <paramref name="producer"/> (e.g. a <see cref="LocalModelTopKProducer"/>)
    /// over every row of <paramref name="dataset"/>, then <see cref="Merge"/>s. Resumes where a previous run stopped.
    /// </summary>
    /// <param name="directory">The cache folder.</param>
    /// <param name="identity">Teacher, tokenizer, template and k.</param>
    /// <param name="dataset">The tokenized dataset (the student's tokens, or the teacher's when <see cref="TeacherCacheIdentity.Tokens"/> says so).</param>
    /// <param name="producer">The teacher.</param>
    /// <param name="options">Chunking (the range options must be left at their defaults).</param>
    /// <param name="progress">Progress after each chunk.</param>
    /// <param name="logger">Progress and throughput log.</param>
    /// <param name="cancellationToken">Stops after the current producer call; finished chunks stay.</param>
    /// <returns>The manifest.</returns>
    public static async Task<TeacherCacheManifest> BuildAsync(string directory, TeacherCacheIdentity identity, TokenizedDataset dataset, ITopKProducer producer, TeacherCacheWriterOptions? options = null, IProgress<TeacherCacheProgress>? progress = null, ILogger? logger = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(dataset);
        options ??= new TeacherCacheWriterOptions();
        if (options.FirstChunk != 0 || options.ChunkCount is not null)
        {
            throw new ArgumentException($"{nameof(BuildAsync)} fills the whole cache; use {nameof(WriteChunksAsync)} and {nameof(Merge)} for a chunk range.", nameof(options));
        }

        var writer = new TeacherCacheWriter(directory, identity, TeacherCacheExample.FromDataset(dataset, identity.Tokens), options, logger);
        await writer.WriteChunksAsync(producer, progress, cancellationToken).ConfigureAwait(false);
        return Merge(directory, logger);
    }

    /// <summary>
    /// Validates every chunk of the cache in <paramref name="directory"/> (all present, one identity, checksums, schema,
    /// row ranges) and writes <c>index.arrow</c> and then <c>manifest.json</c>.
    /// </summary>
    /// <param name="directory">The cache folder the workers filled.</param>
    /// <param name="logger">Log.</param>
    /// <returns>The manifest written.</returns>
    /// <exception cref="InvalidDataException">A chunk is missing, corrupt, or from a different cache; the message names it.</exception>
    public static TeacherCacheManifest Merge(string directory, ILogger? logger = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        logger ??= NullLogger.Instance;
        var sidecars = Directory.Exists(directory) ? Directory.GetFiles(directory, "chunk-*.json").Order(StringComparer.Ordinal).ToArray() : [];
        if (sidecars.Length == 0)
        {
            throw new InvalidDataException($"{directory}: no chunk sidecars (chunk-NNNNN.json); nothing to merge.");
        }

        var first = TeacherCacheManifest.Read(sidecars[0]);
        var header = first.Header();
        var chunks = new TeacherCacheChunk[header.ChunkCount];
        var keys = new string[header.RowCount];
        foreach (var sidecar in sidecars)
        {
            var m = TeacherCacheManifest.Read(sidecar);
            if (m.Header() != header)
            {
                throw new InvalidDataException($"{sidecar} belongs to a different cache than {sidecars[0]}: {Difference(m, header)}.");
            }

            if (m.Chunks.Count != 1 || m.RowKeys is null || m.RowKeys.Count != m.Chunks[0].RowCount)
            {
                throw new InvalidDataException($"{sidecar}: a chunk sidecar needs exactly one chunk entry and one row key per row.");
            }

            var c = m.Chunks[0];
            var expectedFirst = (long)c.Index * header.RowsPerChunk;
            var expectedRows = (int)Math.Min(header.RowsPerChunk, header.RowCount - expectedFirst);
            if (c.Index < 0 || c.Index >= chunks.Length || c.FirstRow != expectedFirst || c.RowCount != expectedRows || c.File != TeacherCacheSchema.ChunkFile(c.Index))
            {
                throw new InvalidDataException($"{sidecar}: chunk {c.Index} claims rows [{c.FirstRow}, +{c.RowCount}) in '{c.File}'; expected rows [{expectedFirst}, +{expectedRows}) in '{TeacherCacheSchema.ChunkFile(c.Index)}'.");
            }

            chunks[c.Index] = c;
            for (var i = 0; i < c.RowCount; i++)
            {
                keys[c.FirstRow + i] = m.RowKeys[i];
            }
        }

        var missing = Enumerable.Range(0, chunks.Length).Where(i => chunks[i] is null).ToArray();
        if (missing.Length > 0)
        {
            throw new InvalidDataException($"{directory}: chunks {string.Join(", ", missing.Take(20))}{(missing.Length > 20 ? ", …" : "")} of {chunks.Length} are missing; run the writers for them (finished chunks are kept).");
        }

        var indexRows = new long[header.RowCount];
        var keyHi = new long[header.RowCount];
        var keyLo = new long[header.RowCount];
        var chunkOf = new int[header.RowCount];
        var offsets = new int[header.RowCount];
        var counts = new int[header.RowCount];
        foreach (var c in chunks)
        {
            var path = Path.Combine(directory, c.File);
            if (!File.Exists(path))
            {
                throw new InvalidDataException($"{path} is missing (its sidecar exists).");
            }

            var sha = TeacherCacheHashes.File(path);
            if (sha != c.Sha256)
            {
                throw new InvalidDataException($"{path}: SHA-256 {sha} does not match its sidecar ({c.Sha256}); the file is corrupt or was rewritten. Delete it and its sidecar and rerun the writer.");
            }

            using var stream = File.OpenRead(path);
            using var reader = new ArrowFileReader(stream);
            TeacherCacheSchema.Check(reader.Schema, TeacherCacheSchema.Chunks(header.K), path);
            using var batch = reader.ReadNextRecordBatch() ?? throw new InvalidDataException($"{path}: no record batch.");
            if (batch.Length != c.PositionCount)
            {
                throw new InvalidDataException($"{path}: {batch.Length} records; its sidecar says {c.PositionCount}.");
            }

            var rows = ((Int64Array)batch.Column(TeacherCacheSchema.Row)).Values;
            var at = 0;
            for (var r = c.FirstRow; r < c.FirstRow + c.RowCount; r++)
            {
                var start = at;
                while (at < rows.Length && rows[at] == r)
                {
                    at++;
                }

                indexRows[r] = r;
                var key = keys[r];
                keyHi[r] = Convert.ToInt64(key[..16], 16);
                keyLo[r] = Convert.ToInt64(key[16..], 16);
                chunkOf[r] = c.Index;
                offsets[r] = start;
                counts[r] = at - start;
            }

            if (at != rows.Length)
            {
                throw new InvalidDataException($"{path}: record {at} has row {rows[at]}, outside or out of order in the chunk's rows [{c.FirstRow}, +{c.RowCount}).");
            }
        }

        var schema = TeacherCacheSchema.Index();
        using (var index = new RecordBatch(schema,
        [
            TeacherCacheSchema.Int64(indexRows), TeacherCacheSchema.Int64(keyHi), TeacherCacheSchema.Int64(keyLo),
            TeacherCacheSchema.Int32(chunkOf), TeacherCacheSchema.Int32(offsets), TeacherCacheSchema.Int32(counts),
        ], (int)header.RowCount))
        {
            AtomicFile.Write(Path.Combine(directory, TeacherCacheSchema.IndexFile), stream =>
            {
                using var writer = new ArrowFileWriter(stream, schema, leaveOpen: true);
                writer.WriteRecordBatch(index);
                writer.WriteEnd();
            });
        }

        var manifest = header with { Chunks = chunks, Index = TeacherCacheSchema.IndexFile };
        AtomicFile.WriteAllText(Path.Combine(directory, TeacherCacheSchema.ManifestFile), manifest.ToJson());
        Log.CacheMerged(logger, directory, chunks.Length, header.RowCount, chunks.Sum(c => c.PositionCount));
        return manifest;
    }

    /// <summary>Names the first identity field in which two manifests differ.</summary>
    internal static string Difference(TeacherCacheManifest a, TeacherCacheManifest b)
    {
        var fields = new (string Name, object? A, object? B)[]
        {
            ("format_version", a.FormatVersion, b.FormatVersion), ("teacher", a.Teacher, b.Teacher),
            ("teacher_config_hash", a.TeacherConfigHash, b.TeacherConfigHash), ("tokenizer_hash", a.TokenizerHash, b.TokenizerHash),
            ("template", a.Template, b.Template), ("k", a.K, b.K), ("dtype", a.Dtype, b.Dtype), ("dataset_hash", a.DatasetHash, b.DatasetHash),
            ("row_count", a.RowCount, b.RowCount), ("rows_per_chunk", a.RowsPerChunk, b.RowsPerChunk),
        };
        var diff = fields.Where(f => !Equals(f.A, f.B)).Select(f => $"{f.Name} '{f.A}' vs '{f.B}'").ToArray();
        return diff.Length == 0 ? "no identity difference" : string.Join("; ", diff);
    }
}
