using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Distill.IO;

namespace Distill.Data.Synthesis;

/// <summary>
/// The resumable output protocol shared by the synthesizers (SDFT, SeqKD): a JSONL file is built chunk by chunk in
/// <c>&lt;output&gt;.partial</c>; after each chunk is appended and flushed, <c>&lt;output&gt;.partial.progress</c> records
/// atomically how many chunks and bytes are complete (plus the caller's running state). A restart truncates the partial
/// file to the recorded length (dropping a torn or half-written chunk) and continues with the next chunk; when the last
/// chunk is written the partial file is renamed to the output path. A run key (hash of settings and data) must match to
/// resume, so a restart with other settings cannot mix two runs in one file.
/// </summary>
internal sealed class ResumableJsonlFile : IDisposable
{
    /// <summary>The suffix of the in-progress file.</summary>
    internal const string PartialSuffix = ".partial";

    /// <summary>The suffix (after <see cref="PartialSuffix"/>) of the progress record.</summary>
    internal const string ProgressSuffix = ".progress";

    private readonly FileStream _stream;
    private readonly string _progressPath;
    private readonly string _runKey;

    private ResumableJsonlFile(string outputPath, string runKey, FileStream stream, int chunksDone, string? state)
    {
        OutputPath = outputPath;
        PartialPath = outputPath + PartialSuffix;
        _progressPath = PartialPath + ProgressSuffix;
        _runKey = runKey;
        _stream = stream;
        ChunksDone = chunksDone;
        State = state;
        ResumedChunks = chunksDone;
    }

    /// <summary>Gets the final output path.</summary>
    internal string OutputPath { get; }

    /// <summary>Gets the in-progress file's path.</summary>
    internal string PartialPath { get; }

    /// <summary>Gets the number of chunks written (resumed ones included).</summary>
    internal int ChunksDone { get; private set; }

    /// <summary>Gets the number of chunks found complete when the file was opened.</summary>
    internal int ResumedChunks { get; }

    /// <summary>Gets the caller's state recorded with the last complete chunk, or <see langword="null"/> for a fresh file.</summary>
    internal string? State { get; private set; }

    /// <summary>Opens (resuming) or creates the partial file of <paramref name="outputPath"/>.</summary>
    /// <param name="outputPath">The final output path.</param>
    /// <param name="runKey">Identifies the settings and data; a partial file of another run is not resumed.</param>
    /// <returns>The open file, positioned after the last complete chunk.</returns>
    /// <exception cref="InvalidDataException">The partial file belongs to another run or is shorter than its progress record says.</exception>
    internal static ResumableJsonlFile Open(string outputPath, string runKey)
    {
        var full = Path.GetFullPath(outputPath);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        var partial = outputPath + PartialSuffix;
        var progressPath = partial + ProgressSuffix;
        var chunks = 0;
        long bytes = 0;
        string? state = null;
        if (File.Exists(partial) && File.Exists(progressPath))
        {
            Progress record;
            try
            {
                record = JsonSerializer.Deserialize<Progress>(File.ReadAllText(progressPath, Encoding.UTF8))
                    ?? throw new InvalidDataException($"{progressPath}: empty progress record.");
            }
            catch (JsonException ex)
            {
                throw new InvalidDataException($"{progressPath}: not a progress record ({ex.Message}); delete it and {partial} to start again.", ex);
            }

            if (record.RunKey != runKey)
            {
                throw new InvalidDataException($"{progressPath}: {partial} was written by a run with other settings or data; delete both files to start again.");
            }

            if (new FileInfo(partial).Length < record.Bytes)
            {
                throw new InvalidDataException($"{partial}: {new FileInfo(partial).Length} bytes but {progressPath} records {record.Bytes} complete bytes; delete both files to start again.");
            }

            (chunks, bytes, state) = (record.Chunks, record.Bytes, record.State);
        }

        var stream = new FileStream(partial, FileMode.OpenOrCreate, FileAccess.Write, FileShare.Read);
        try
        {
            stream.SetLength(bytes); // drops a torn or half-written chunk after the last recorded one
            stream.Seek(bytes, SeekOrigin.Begin);
            var file = new ResumableJsonlFile(outputPath, runKey, stream, chunks, state);
            if (chunks == 0)
            {
                file.WriteProgress(0, null);
            }

            return file;
        }
        catch
        {
            stream.Dispose();
            throw;
        }
    }

    /// <summary>Appends one chunk's text (whole lines), flushes it to disk, then records the chunk as complete.</summary>
    /// <param name="text">The chunk's lines, each ending with <c>\n</c> (may be empty).</param>
    /// <param name="state">The caller's running state after this chunk (e.g. statistics as JSON).</param>
    internal void Append(string text, string? state)
    {
        _stream.Write(Encoding.UTF8.GetBytes(text));
        _stream.Flush(flushToDisk: true);
        ChunksDone++;
        State = state;
        WriteProgress(ChunksDone, state);
    }

    /// <summary>Reads the complete chunks written so far (the partial file up to the recorded length).</summary>
    /// <returns>The text.</returns>
    internal string ReadWritten()
    {
        using var reader = new FileStream(PartialPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        var buffer = new byte[_stream.Position];
        reader.ReadExactly(buffer);
        return Encoding.UTF8.GetString(buffer);
    }

    /// <summary>Closes the partial file and renames it to the output path; removes the progress record.</summary>
    internal void Complete()
    {
        _stream.Dispose();
        File.Move(PartialPath, OutputPath, overwrite: true);
        File.Delete(_progressPath);
    }

    /// <inheritdoc />
    public void Dispose() => _stream.Dispose();

    private void WriteProgress(int chunks, string? state) =>
        AtomicFile.WriteAllText(_progressPath, JsonSerializer.Serialize(new Progress(_runKey, chunks, _stream.Position, state)));

    private sealed record Progress(
        [property: JsonPropertyName("run_key")] string RunKey,
        [property: JsonPropertyName("chunks")] int Chunks,
        [property: JsonPropertyName("bytes")] long Bytes,
        [property: JsonPropertyName("state")] string? State);
}
