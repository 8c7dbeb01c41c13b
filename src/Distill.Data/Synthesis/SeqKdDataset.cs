using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace Distill.Data.Synthesis;

/// <summary>A SeqKD teacher-answer file read back: its manifest and rows.</summary>
/// <param name="Path">The JSONL file.</param>
/// <param name="Manifest">Its manifest.</param>
/// <param name="Records">Its rows, in file order.</param>
public sealed record SeqKdFile(string Path, SeqKdManifest Manifest, IReadOnlyList<SeqKdRecord> Records)
{
    /// <summary>
    /// The rows as instruction examples to train on: the source instruction and input, with <see cref="InstructionExample.Output"/>
    /// = the teacher's answer (the template's response prefix removed, since the template adds it back). Render them with the
    /// same template (<see cref="SeqKdManifest.Template"/>) to get the teacher's prompt and answer text.
    /// </summary>
    /// <returns>One example per row.</returns>
    /// <exception cref="InvalidOperationException">The file was generated from text prompts, which have no instruction fields.</exception>
    public IReadOnlyList<InstructionExample> ToInstructionExamples()
    {
        if (Manifest.Source != "instruction")
        {
            throw new InvalidOperationException($"{Path}: generated from {Manifest.Source} prompts, which have no instruction and input; use {nameof(ToTextExamples)}.");
        }

        var prefix = Manifest.ResponsePrefix;
        return [.. Records.Select(r => new InstructionExample(
            r.SourceInstruction!,
            r.Input ?? string.Empty,
            prefix.Length > 0 && r.TeacherOutput.StartsWith(prefix, StringComparison.Ordinal) ? r.TeacherOutput[prefix.Length..] : r.TeacherOutput)
        {
            Task = r.Task,
        })];
    }

    /// <summary>The rows as text examples to train on: prompt = <c>instruction</c> (the text the teacher continued), response = <c>teacher_output</c>; the dataset's reference is kept in <see cref="TextExample.References"/>.</summary>
    /// <returns>One example per row.</returns>
    public IReadOnlyList<TextExample> ToTextExamples() =>
        [.. Records.Select(r => new TextExample(r.Instruction, r.TeacherOutput) { References = [r.Output] })];
}

/// <summary>Reads SeqKD teacher-answer files written by <see cref="SeqKdGenerator"/> (JSONL plus <c>.manifest.json</c>).</summary>
public static class SeqKdDataset
{
    private static readonly JsonSerializerOptions Json = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>The manifest path of a SeqKD file: <c>&lt;path&gt;.manifest.json</c>.</summary>
    /// <param name="path">The JSONL file.</param>
    /// <returns>The manifest path.</returns>
    public static string ManifestPath(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        return path + ".manifest.json";
    }

    /// <summary>Reads and validates a SeqKD file: the manifest's format, every row's fields and order, the row count and the file hash.</summary>
    /// <param name="path">The JSONL file.</param>
    /// <returns>The manifest and rows.</returns>
    /// <exception cref="FileNotFoundException">The file or its manifest is missing.</exception>
    /// <exception cref="InvalidDataException">The manifest or a row is invalid (the message names the file and line), or the file does not match its manifest.</exception>
    public static SeqKdFile Read(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var manifestPath = ManifestPath(path);
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"SeqKD file {path} not found.", path);
        }

        if (!File.Exists(manifestPath))
        {
            throw new FileNotFoundException($"{path}: its manifest {manifestPath} is missing (a SeqKD file is complete only once the manifest is written).", manifestPath);
        }

        SeqKdManifest manifest;
        try
        {
            manifest = JsonSerializer.Deserialize<SeqKdManifest>(File.ReadAllText(manifestPath, Encoding.UTF8), Json)
                ?? throw new InvalidDataException($"{manifestPath}: empty manifest.");
        }
        catch (JsonException ex)
        {
            throw new InvalidDataException($"{manifestPath}: not a SeqKD manifest ({ex.Message}).", ex);
        }

        if (manifest.Format != SeqKdManifest.CurrentFormat)
        {
            throw new InvalidDataException($"{manifestPath}: format '{manifest.Format}', expected '{SeqKdManifest.CurrentFormat}'.");
        }

        if (manifest.Generation is null || manifest.Statistics is null || manifest.FileSha256 is null)
        {
            throw new InvalidDataException($"{manifestPath}: missing 'generation', 'statistics' or 'file_sha256'.");
        }

        var bytes = File.ReadAllBytes(path);
        var records = ParseRows(path, Encoding.UTF8.GetString(bytes), manifest);
        if (records.Count != manifest.Rows)
        {
            throw new InvalidDataException($"{path}: {records.Count} rows but {manifestPath} records {manifest.Rows}.");
        }

        if (Convert.ToHexStringLower(SHA256.HashData(bytes)) != manifest.FileSha256)
        {
            throw new InvalidDataException($"{path}: the file's SHA-256 differs from {manifestPath}'s 'file_sha256'; it was changed after generation.");
        }

        return new SeqKdFile(path, manifest, records);
    }

    /// <summary>Parses and checks rows against a manifest; errors name the file and 1-based line.</summary>
    internal static List<SeqKdRecord> ParseRows(string path, string text, SeqKdManifest manifest)
    {
        var lines = text.Split('\n');
        var records = new List<SeqKdRecord>();
        (int Index, int Sample) previous = (-1, -1);
        for (var i = 0; i < lines.Length; i++)
        {
            var line = lines[i];
            if (i == lines.Length - 1 && line.Length == 0)
            {
                break; // after the final newline
            }

            SeqKdRecord? record;
            try
            {
                record = JsonSerializer.Deserialize<SeqKdRecord>(line, Json);
            }
            catch (JsonException ex)
            {
                throw new InvalidDataException($"{path}:{i + 1}: not a SeqKD row ({ex.Message}).", ex);
            }

            var error = record is null ? "empty row"
                : record.Instruction is null ? "missing 'instruction'"
                : record.TeacherOutput is null ? "missing 'teacher_output'"
                : record.Output is null ? "missing 'output'"
                : record.Index < 0 || record.Index >= manifest.Prompts ? $"'index' {record.Index} is outside [0, {manifest.Prompts})"
                : record.Sample < 0 || record.Sample >= manifest.Generation.NumSamples ? $"'sample' {record.Sample} is outside [0, {manifest.Generation.NumSamples})"
                : (record.Index, record.Sample).CompareTo(previous) <= 0 ? $"row ({record.Index}, {record.Sample}) is not after the previous row ({previous.Index}, {previous.Sample})"
                : record.Tokens < 0 || record.Tokens > manifest.Generation.MaxNewTokens ? $"'tokens' {record.Tokens} is outside [0, {manifest.Generation.MaxNewTokens}]"
                : !Enum.IsDefined(record.FinishReason) ? $"unknown 'finish_reason' {record.FinishReason}"
                : manifest.Source == "instruction" && record.SourceInstruction is null ? "missing 'source_instruction' in a file generated from instruction examples"
                : null;
            if (error is not null)
            {
                throw new InvalidDataException($"{path}:{i + 1}: {error}.");
            }

            records.Add(record!);
            previous = (record!.Index, record.Sample);
        }

        return records;
    }
}
