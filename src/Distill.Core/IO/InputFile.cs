using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Distill.IO;

/// <summary>
/// Checks and reads input files (model configs, tokenizers, adapters, datasets) before any work is done with them: symbolic
/// links are followed (the Hugging Face hub cache stores a snapshot folder as relative links into <c>../../blobs/</c>), special
/// files (FIFOs, sockets, devices such as <c>/dev/zero</c>) and empty files are rejected before a byte is read, sizes are
/// bounded, UTF-8 is strict and JSON must not repeat a key. Every error names the file.
/// </summary>
public static class InputFile
{
    /// <summary>The default size limit for a JSON file read whole (512 MiB; the largest Hub tokenizer.json files are tens of MB).</summary>
    public const long DefaultMaxJsonBytes = 512L << 20;

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>
    /// Resolves <paramref name="path"/> to the regular file it names, following symbolic links (relative ones against the link's
    /// folder, chains to the end), and returns that file's length.
    /// </summary>
    /// <param name="path">The file or a link to it.</param>
    /// <returns>The length in bytes of the final target (never 0).</returns>
    /// <exception cref="FileNotFoundException">The file, or the target of a dangling link, does not exist; the message names both.</exception>
    /// <exception cref="InvalidDataException">The path is a folder, an empty file or a special file (FIFO, socket, device).</exception>
    public static long RequireRegularFile(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var info = new FileInfo(path);
        if (Directory.Exists(path))
        {
            throw new InvalidDataException($"'{path}' is a folder, not a file.");
        }

        if (!info.Exists)
        {
            throw new FileNotFoundException($"File '{path}' does not exist.", path);
        }

        var final = info;
        if (info.LinkTarget is not null)
        {
            FileSystemInfo? target;
            try
            {
                target = info.ResolveLinkTarget(returnFinalTarget: true);
            }
            catch (IOException e)
            {
                throw new InvalidDataException($"'{path}' is a symbolic link that cannot be resolved ({e.Message}).", e);
            }

            if (target is null || !target.Exists)
            {
                throw new FileNotFoundException($"'{path}' is a symbolic link to '{target?.FullName ?? info.LinkTarget}', which does not exist.", path);
            }

            if (target is DirectoryInfo || Directory.Exists(target.FullName))
            {
                throw new InvalidDataException($"'{path}' is a symbolic link to the folder '{target.FullName}', not to a file.");
            }

            final = new FileInfo(target.FullName);
        }

        // Special files report a length of 0 and would block (FIFO) or never end (/dev/zero) if read.
        return final.Length > 0
            ? final.Length
            : throw new InvalidDataException(final.FullName == info.FullName
                ? $"'{path}' is empty or is not a regular file (a FIFO, socket or device)."
                : $"'{path}' (a link to '{final.FullName}') is empty or is not a regular file (a FIFO, socket or device).");
    }

    /// <summary>Reads a whole UTF-8 text file after <see cref="RequireRegularFile"/>, strictly (a leading BOM is skipped).</summary>
    /// <param name="path">The file.</param>
    /// <param name="maxBytes">The size limit.</param>
    /// <returns>The text.</returns>
    /// <exception cref="InvalidDataException">Not a regular file, over the limit, or invalid UTF-8 (the message gives the byte offset).</exception>
    public static string ReadAllText(string path, long maxBytes = DefaultMaxJsonBytes)
    {
        var length = RequireRegularFile(path);
        if (length > maxBytes)
        {
            throw new InvalidDataException($"'{path}' is {length} bytes, over the limit of {maxBytes} bytes for this kind of file.");
        }

        var bytes = File.ReadAllBytes(path);
        var span = bytes.AsSpan();
        if (span.StartsWith((ReadOnlySpan<byte>)[0xEF, 0xBB, 0xBF]))
        {
            span = span[3..];
        }

        try
        {
            return StrictUtf8.GetString(span);
        }
        catch (DecoderFallbackException e)
        {
            throw new InvalidDataException($"'{path}' is not valid UTF-8 (invalid byte at offset {e.Index + (bytes.Length - span.Length)}).", e);
        }
    }

    /// <summary>Reads a JSON object file strictly: regular file, size limit, valid UTF-8, valid JSON, no repeated key at any depth.</summary>
    /// <param name="path">The file.</param>
    /// <param name="what">What the file is, for messages (e.g. <c>Model config</c>).</param>
    /// <param name="maxBytes">The size limit.</param>
    /// <returns>The root object.</returns>
    /// <exception cref="InvalidDataException">Any violation; the message names the file (and the repeated key).</exception>
    public static JsonObject ReadJsonObject(string path, string what, long maxBytes = DefaultMaxJsonBytes) => ParseJsonObject(ReadAllText(path, maxBytes), path, what);

    /// <summary>Parses JSON object text strictly (no repeated key at any depth, no comments or trailing commas).</summary>
    /// <param name="json">The text.</param>
    /// <param name="source">Where it came from, for messages.</param>
    /// <param name="what">What the file is, for messages.</param>
    /// <returns>The root object.</returns>
    /// <exception cref="InvalidDataException">Malformed JSON, a repeated key or a root that is not an object; the message names <paramref name="source"/>.</exception>
    public static JsonObject ParseJsonObject(string json, string source, string what)
    {
        ArgumentNullException.ThrowIfNull(json);
        JsonNode? root;
        try
        {
            root = JsonNode.Parse(json, null, new JsonDocumentOptions { AllowDuplicateProperties = false, MaxDepth = 256 });
        }
        catch (JsonException e)
        {
            if (FindRepeatedKey(json) is { } repeated)
            {
                throw new InvalidDataException($"{what} '{source}': key '{Bound(repeated.Key)}' appears twice in the same object (line {repeated.Line}).", e);
            }

            throw new InvalidDataException($"{what} '{source}': invalid JSON, not valid JSON text ({Bound(e.Message)}).", e);
        }

        return root as JsonObject ?? throw new InvalidDataException($"{what} '{source}': the top level is not a JSON object (found {root?.GetValueKind().ToString() ?? "null"}).");
    }

    /// <summary>Finds the first key repeated within one JSON object (for a clear message after a duplicate-key parse error).</summary>
    /// <param name="json">The JSON text.</param>
    /// <returns>The key and its 1-based line, or <see langword="null"/> when no key repeats (or the text is malformed before one does).</returns>
    public static (string Key, long Line)? FindRepeatedKey(string json)
    {
        var bytes = Encoding.UTF8.GetBytes(json);
        var reader = new Utf8JsonReader(bytes, new JsonReaderOptions { MaxDepth = 256 });
        var stack = new Stack<HashSet<string>>();
        try
        {
            while (reader.Read())
            {
                switch (reader.TokenType)
                {
                    case JsonTokenType.StartObject:
                        stack.Push(new HashSet<string>(StringComparer.Ordinal));
                        break;
                    case JsonTokenType.EndObject:
                        stack.Pop();
                        break;
                    case JsonTokenType.PropertyName:
                        var name = reader.GetString()!;
                        if (!stack.Peek().Add(name))
                        {
                            return (name, 1 + bytes.AsSpan(0, (int)reader.TokenStartIndex).Count((byte)'\n'));
                        }

                        break;
                }
            }
        }
        catch (JsonException)
        {
        }

        return null;
    }

    /// <summary>Shortens untrusted text for an error message.</summary>
    /// <param name="text">The text (<see langword="null"/> gives <c>null</c>).</param>
    /// <param name="max">The most characters kept.</param>
    /// <returns>The text, or its first <paramref name="max"/> characters followed by its length.</returns>
    public static string Bound(string? text, int max = 200) => text is null ? "null" : text.Length <= max ? text : string.Concat(text.AsSpan(0, max), $"… ({text.Length} characters)");
}
