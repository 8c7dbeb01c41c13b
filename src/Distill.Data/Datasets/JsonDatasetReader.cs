using System.Globalization;
using System.Text.Json;

namespace Distill.Data;

/// <summary>
/// Reads JSON Lines (one object per line, streamed) or JSON array files of instruction, prompt/output, QA and math
/// examples. Malformed rows raise <see cref="InvalidDataException"/> naming the file and the line (JSONL) or the element
/// index (JSON array).
/// </summary>
/// <remarks>
/// Before any work: the path must be a regular file (symbolic links are followed; FIFOs and devices are rejected), and an
/// empty or whitespace-only file, or one with no rows, is an error naming it. Records are streamed with a bounded length
/// (<see cref="JsonReadOptions.MaxRecordBytes"/>); invalid UTF-8 is an error naming the file and line unless
/// <see cref="JsonReadOptions.ReplaceInvalidUtf8"/> is set.
/// </remarks>
public static class JsonDatasetReader
{
    /// <summary>
    /// Reads instruction rows: <c>instruction</c> (required), <c>input</c> or <c>context</c> (optional), <c>output</c> or
    /// <c>response</c> (a string, or a list whose first element is used); an optional <c>task</c>.
    /// </summary>
    /// <param name="path">A .jsonl or .json file.</param>
    /// <param name="options">Limits and UTF-8 handling; <see langword="null"/> = <see cref="JsonReadOptions.Default"/>.</param>
    /// <returns>The examples, streamed.</returns>
    public static IEnumerable<InstructionExample> ReadInstructions(string path, JsonReadOptions? options = null)
    {
        foreach (var row in ReadRows(path, options))
        {
            yield return ParseInstruction(row);
        }
    }

    /// <summary>
    /// Reads rows ready for tokenisation: <c>prompt</c> + <c>output</c> rows (DSKD's format; <c>output</c> may be a list of
    /// references, the first is the training target) are taken as they are; <c>instruction</c> rows are rendered with
    /// <paramref name="template"/>.
    /// </summary>
    /// <param name="path">A .jsonl or .json file.</param>
    /// <param name="template">The template for instruction rows; null makes instruction rows an error.</param>
    /// <param name="options">Limits and UTF-8 handling; <see langword="null"/> = <see cref="JsonReadOptions.Default"/>.</param>
    /// <returns>The examples, streamed.</returns>
    public static IEnumerable<TextExample> ReadTextExamples(string path, InstructionTemplate? template = null, JsonReadOptions? options = null)
    {
        foreach (var row in ReadRows(path, options))
        {
            if (row.Element.TryGetProperty("prompt", out var prompt))
            {
                if (prompt.ValueKind != JsonValueKind.String)
                {
                    throw row.Error("'prompt' must be a string");
                }

                var references = Outputs(row, "output", "response");
                yield return new TextExample(prompt.GetString()!, references[0]) { References = references };
            }
            else if (row.Element.TryGetProperty("instruction", out _))
            {
                if (template is null)
                {
                    throw row.Error("has 'instruction' but no prompt template was given");
                }

                var example = ParseInstruction(row);
                var references = Outputs(row, "output", "response");
                yield return template.Apply(example) with { References = references };
            }
            else
            {
                throw row.Error("needs 'prompt' + 'output' or 'instruction' + 'output'");
            }
        }
    }

    /// <summary>
    /// Reads QA rows: <c>context</c>, <c>question</c>, and <c>answers</c> as a list of strings, a SQuAD object
    /// (<c>{"text": [...], "answer_start": [...]}</c>) or a single <c>answer</c> string.
    /// </summary>
    /// <param name="path">A .jsonl or .json file.</param>
    /// <param name="options">Limits and UTF-8 handling; <see langword="null"/> = <see cref="JsonReadOptions.Default"/>.</param>
    /// <returns>The examples, streamed.</returns>
    public static IEnumerable<QaExample> ReadQa(string path, JsonReadOptions? options = null)
    {
        foreach (var row in ReadRows(path, options))
        {
            var context = RequiredString(row, "context");
            var question = RequiredString(row, "question");
            List<string> answers;
            if (row.Element.TryGetProperty("answers", out var a))
            {
                answers = a.ValueKind switch
                {
                    JsonValueKind.Array => StringList(row, a, "answers"),
                    JsonValueKind.Object when a.TryGetProperty("text", out var text) => StringList(row, text, "answers.text"),
                    JsonValueKind.String => [a.GetString()!],
                    _ => throw row.Error("'answers' must be a list of strings or {\"text\": [...]}"),
                };
            }
            else
            {
                answers = [RequiredString(row, "answer")];
            }

            if (answers.Count == 0)
            {
                throw row.Error("has no answers");
            }

            yield return new QaExample(context, question, answers);
        }
    }

    /// <summary>Reads GSM8K-style rows: <c>question</c> and <c>answer</c>, whose final answer follows the last <c>####</c>.</summary>
    /// <param name="path">A .jsonl or .json file.</param>
    /// <param name="options">Limits and UTF-8 handling; <see langword="null"/> = <see cref="JsonReadOptions.Default"/>.</param>
    /// <returns>The examples, streamed.</returns>
    public static IEnumerable<MathExample> ReadMath(string path, JsonReadOptions? options = null)
    {
        foreach (var row in ReadRows(path, options))
        {
            var question = RequiredString(row, "question");
            var answer = RequiredString(row, "answer");
            var final = ExtractFinalAnswer(answer) ?? throw row.Error("'answer' has no '####' final answer");
            yield return new MathExample(question, answer, final);
        }
    }

    /// <summary>Returns the text after the last <c>####</c>, trimmed, with thousands separators removed; null when there is no marker.</summary>
    /// <param name="solution">A GSM8K solution.</param>
    /// <returns>The final answer, or null.</returns>
    public static string? ExtractFinalAnswer(string solution)
    {
        ArgumentNullException.ThrowIfNull(solution);
        var index = solution.LastIndexOf("####", StringComparison.Ordinal);
        return index < 0 ? null : solution[(index + 4)..].Trim().Replace(",", string.Empty, StringComparison.Ordinal);
    }

    /// <summary>Streams the objects of a JSONL file (blank lines skipped) or of a JSON array file.</summary>
    internal static IEnumerable<Row> ReadRows(string path, JsonReadOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"Dataset file '{path}' does not exist.", path);
        }

        // Follows links; rejects empty files, FIFOs and devices before reading.
        try
        {
            Distill.IO.InputFile.RequireRegularFile(path);
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"Dataset file {e.Message}", e);
        }

        return ReadRows(() => File.OpenRead(path), path, options);
    }

    internal static IEnumerable<Row> ReadRows(Func<Stream> open, string source, JsonReadOptions? options = null)
    {
        options ??= JsonReadOptions.Default;
        if (options.MaxRecordBytes <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.MaxRecordBytes, $"{nameof(JsonReadOptions.MaxRecordBytes)} must be positive.");
        }

        var rows = 0;
        bool isArray;
        using (var probe = open())
        {
            isArray = FirstContentByte(probe) == '[';
        }

        var inner = isArray ? ReadArray(open, source, options.MaxRecordBytes) : ReadLines(open, source, options);
        foreach (var row in inner)
        {
            rows++;
            yield return row;
        }

        if (rows == 0)
        {
            throw new InvalidDataException($"Dataset file '{source}' has no examples (it is empty, whitespace only{(isArray ? " or an empty JSON array" : string.Empty)}).");
        }
    }

    private static IEnumerable<Row> ReadLines(Func<Stream> open, string source, JsonReadOptions options)
    {
        using var stream = open();
        var replaced = 0;
        var replacedLines = 0;
        var firstReplacedLine = 0;
        foreach (var (bytes, length, lineNumber) in RecordReader.Lines(stream, source, options.MaxRecordBytes))
        {
            var line = bytes.AsMemory(0, length);
            if (IsBlank(line.Span))
            {
                continue;
            }

            if (!System.Text.Unicode.Utf8.IsValid(line.Span))
            {
                if (!options.ReplaceInvalidUtf8)
                {
                    throw new InvalidDataException(
                        $"{source}:{lineNumber}: invalid UTF-8 at byte {RecordReader.FirstInvalidUtf8(line.Span)} of the line (set {nameof(JsonReadOptions)}.{nameof(JsonReadOptions.ReplaceInvalidUtf8)} to replace it with U+FFFD).");
                }

                var (fixedBytes, count) = RecordReader.ReplaceInvalidUtf8(line.Span);
                line = fixedBytes;
                replaced += count;
                replacedLines++;
                firstReplacedLine = firstReplacedLine == 0 ? lineNumber : firstReplacedLine;
            }

            JsonElement element;
            try
            {
                using var doc = JsonDocument.Parse(line);
                element = doc.RootElement.Clone();
            }
            catch (JsonException ex)
            {
                throw new InvalidDataException($"{source}:{lineNumber}: invalid JSON ({Distill.IO.InputFile.Bound(ex.Message)}).", ex);
            }

            if (element.ValueKind != JsonValueKind.Object)
            {
                throw new InvalidDataException($"{source}:{lineNumber}: expected a JSON object, got {element.ValueKind}.");
            }

            yield return new Row(element, source, lineNumber.ToString(CultureInfo.InvariantCulture));
        }

        if (replaced > 0 && options.Logger is { } logger)
        {
            Log.InvalidUtf8Replaced(logger, source, replaced, replacedLines, firstReplacedLine);
        }
    }

    private static bool IsBlank(ReadOnlySpan<byte> line)
    {
        foreach (var b in line)
        {
            if (b is not ((byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\f' or (byte)'\v'))
            {
                return false;
            }
        }

        return true;
    }

    // Streams the elements of a top-level JSON array (one element in memory at a time, each bounded).
    private static IEnumerable<Row> ReadArray(Func<Stream> open, string source, int maxRecordBytes)
    {
        using var stream = new RecordReader.BoundedStream(open(), maxRecordBytes);
        using var elements = JsonSerializer.DeserializeAsyncEnumerable<JsonElement>(stream).ToBlockingEnumerable().GetEnumerator();
        var index = 0;
        while (true)
        {
            bool more;
            try
            {
                stream.StartRecord();
                more = elements.MoveNext();
            }
            catch (JsonException ex)
            {
                var line = ex.LineNumber is long l ? (l + 1).ToString(CultureInfo.InvariantCulture) : "?";
                throw new InvalidDataException($"{source}:{line}: invalid JSON at {ex.Path ?? "element " + index.ToString(CultureInfo.InvariantCulture)} ({Distill.IO.InputFile.Bound(ex.Message)}).", ex);
            }
            catch (RecordReader.RecordTooLongException)
            {
                throw new InvalidDataException($"{source}:[{index}]: element is longer than {maxRecordBytes} bytes (the limit, {nameof(JsonReadOptions)}.{nameof(JsonReadOptions.MaxRecordBytes)}).");
            }

            if (!more)
            {
                yield break;
            }

            var element = elements.Current;
            var location = "[" + index.ToString(CultureInfo.InvariantCulture) + "]";
            if (element.ValueKind != JsonValueKind.Object)
            {
                throw new InvalidDataException($"{source}:{location}: expected a JSON object, got {element.ValueKind}.");
            }

            yield return new Row(element, source, location);
            index++;
        }
    }

    private static int FirstContentByte(Stream stream)
    {
        var buffer = new byte[4096];
        var first = true;
        while (true)
        {
            var n = stream.Read(buffer);
            if (n == 0)
            {
                return -1;
            }

            var span = buffer.AsSpan(0, n);
            if (first && span.StartsWith((ReadOnlySpan<byte>)[0xEF, 0xBB, 0xBF]))
            {
                span = span[3..];
            }

            first = false;
            foreach (var b in span)
            {
                if (b is not ((byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\n'))
                {
                    return b;
                }
            }
        }
    }

    private static InstructionExample ParseInstruction(Row row)
    {
        var instruction = RequiredString(row, "instruction");
        var input = OptionalString(row, "input") ?? OptionalString(row, "context") ?? string.Empty;
        var output = Outputs(row, "output", "response")[0];
        return new InstructionExample(instruction, input, output) { Task = OptionalString(row, "task") };
    }

    private static List<string> Outputs(Row row, string key, string alternative)
    {
        if (!row.Element.TryGetProperty(key, out var value) && !row.Element.TryGetProperty(alternative, out value))
        {
            throw row.Error($"missing '{key}'");
        }

        var list = value.ValueKind switch
        {
            JsonValueKind.String => [value.GetString()!],
            JsonValueKind.Array => StringList(row, value, key),
            _ => throw row.Error($"'{key}' must be a string or a list of strings"),
        };
        return list.Count > 0 ? list : throw row.Error($"'{key}' is an empty list");
    }

    private static List<string> StringList(Row row, JsonElement array, string key)
    {
        var list = new List<string>();
        foreach (var item in array.EnumerateArray())
        {
            list.Add(item.ValueKind == JsonValueKind.String ? item.GetString()! : throw row.Error($"'{key}' must contain only strings"));
        }

        return list;
    }

    private static string RequiredString(Row row, string key) =>
        OptionalString(row, key) ?? throw row.Error($"missing string '{key}'");

    private static string? OptionalString(Row row, string key)
    {
        if (!row.Element.TryGetProperty(key, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        return value.ValueKind == JsonValueKind.String ? value.GetString() : throw row.Error($"'{key}' must be a string");
    }

    /// <summary>One object read from a dataset file, with where it came from.</summary>
    internal readonly record struct Row(JsonElement Element, string Source, string Location)
    {
        public InvalidDataException Error(string message) =>
            new($"{Source}:{Location}: {message}.");
    }
}
