using System.Text.Json;
using System.Text.Json.Serialization;

namespace Distill.Data;

/// <summary>
/// The JSON manifest of a teacher cache (<c>manifest.json</c>, written last by <see cref="TeacherCacheWriter.Merge"/>),
/// and of each finished chunk (<c>chunk-NNNNN.json</c>, written by the worker that filled it, with one entry in
/// <see cref="Chunks"/> and the per-row keys).
/// </summary>
public sealed record TeacherCacheManifest
{
    /// <summary>The format version this library writes and reads.</summary>
    public const int CurrentFormatVersion = 1;

    /// <summary>Gets the format version.</summary>
    public int FormatVersion { get; init; } = CurrentFormatVersion;

    /// <summary>Gets the teacher's name.</summary>
    public required string Teacher { get; init; }

    /// <summary>Gets the hash of the teacher's configuration (may be empty).</summary>
    public string TeacherConfigHash { get; init; } = "";

    /// <summary>Gets the tokenizer hash.</summary>
    public required string TokenizerHash { get; init; }

    /// <summary>Gets the prompt template's name.</summary>
    public required string Template { get; init; }

    /// <summary>Gets k.</summary>
    public required int K { get; init; }

    /// <summary>Gets which tokenisation the rows hold (<c>student</c>, the default, or <c>teacher</c> for cross-tokenizer objectives).</summary>
    public TeacherCacheTokens Tokens { get; init; } = TeacherCacheTokens.Student;

    /// <summary>Gets the dtype of the log-probabilities (<c>float32</c>).</summary>
    public string Dtype { get; init; } = "float32";

    /// <summary>Gets the dataset hash (<see cref="TeacherCacheHashes.Dataset"/>).</summary>
    public required string DatasetHash { get; init; }

    /// <summary>Gets the number of dataset rows.</summary>
    public required long RowCount { get; init; }

    /// <summary>Gets the number of rows per chunk (the last chunk may hold fewer).</summary>
    public required int RowsPerChunk { get; init; }

    /// <summary>Gets the chunks, in row order.</summary>
    public IReadOnlyList<TeacherCacheChunk> Chunks { get; init; } = [];

    /// <summary>Gets the index file name (manifest only).</summary>
    public string? Index { get; init; }

    /// <summary>Gets each row's lookup key, 32 hex characters (chunk sidecars only; the merged index holds them).</summary>
    public IReadOnlyList<string>? RowKeys { get; init; }

    /// <summary>Gets the number of chunks a complete cache has.</summary>
    [JsonIgnore]
    public int ChunkCount => (int)((RowCount + RowsPerChunk - 1) / RowsPerChunk);

    internal static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower, allowIntegerValues: false) },
    };

    /// <summary>The identity fields only (no chunks, index or keys): what every chunk of one cache must agree on.</summary>
    internal TeacherCacheManifest Header() => this with { Chunks = [], Index = null, RowKeys = null };

    internal string ToJson() => JsonSerializer.Serialize(this, Json) + "\n";

    /// <summary>Reads a manifest or chunk sidecar, with a clear error for a missing or malformed file.</summary>
    internal static TeacherCacheManifest Read(string path)
    {
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"Teacher cache file '{path}' is missing.", path);
        }

        TeacherCacheManifest? manifest;
        try
        {
            manifest = JsonSerializer.Deserialize<TeacherCacheManifest>(File.ReadAllText(path), Json);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: not a valid teacher cache manifest ({e.Message}).", e);
        }

        if (manifest is null)
        {
            throw new InvalidDataException($"{path}: empty manifest.");
        }

        if (manifest.FormatVersion != CurrentFormatVersion)
        {
            throw new InvalidDataException($"{path}: format_version {manifest.FormatVersion} is not supported (this library reads {CurrentFormatVersion}).");
        }

        if (manifest.Dtype != "float32")
        {
            throw new InvalidDataException($"{path}: dtype '{manifest.Dtype}' is not supported (float32).");
        }

        if (manifest.K < 1 || manifest.RowsPerChunk < 1 || manifest.RowCount < 0)
        {
            throw new InvalidDataException($"{path}: k = {manifest.K}, rows_per_chunk = {manifest.RowsPerChunk}, row_count = {manifest.RowCount} are not valid.");
        }

        return manifest;
    }
}

/// <summary>One chunk file of a teacher cache.</summary>
/// <param name="File">The file name, relative to the cache folder (<c>chunk-NNNNN.arrow</c>).</param>
/// <param name="Index">The chunk number.</param>
/// <param name="FirstRow">The first dataset row in the chunk.</param>
/// <param name="RowCount">The number of dataset rows in the chunk.</param>
/// <param name="PositionCount">The number of Arrow records (scored positions) in the chunk.</param>
/// <param name="Sha256">SHA-256 of the file, lower-case hex.</param>
public sealed record TeacherCacheChunk(string File, int Index, long FirstRow, int RowCount, long PositionCount, string Sha256);
