using Microsoft.Extensions.Logging;

namespace Distill.Data;

/// <summary>How <see cref="JsonDatasetReader"/> treats hostile or damaged dataset files.</summary>
public sealed record JsonReadOptions
{
    /// <summary>The default record limit (16 MiB): far above any real example, far below what exhausts memory.</summary>
    public const int DefaultMaxRecordBytes = 16 << 20;

    /// <summary>Gets the longest record accepted, in bytes: a JSONL line (streamed, never held whole beyond the limit) or one
    /// element of a JSON array file. A longer one is an <see cref="InvalidDataException"/> naming the file and line.</summary>
    /// <value>The default is <see cref="DefaultMaxRecordBytes"/>.</value>
    public int MaxRecordBytes { get; init; } = DefaultMaxRecordBytes;

    /// <summary>Gets a value indicating whether invalid UTF-8 in a JSONL line is replaced by U+FFFD (counted and logged as a
    /// warning) instead of being an <see cref="InvalidDataException"/> naming the file and line.</summary>
    /// <value>The default is <see langword="false"/>.</value>
    public bool ReplaceInvalidUtf8 { get; init; }

    /// <summary>Gets the logger for replacement counts (event 4004); <see langword="null"/> = none.</summary>
    public ILogger? Logger { get; init; }

    /// <summary>Gets the default options.</summary>
    public static JsonReadOptions Default { get; } = new();
}
