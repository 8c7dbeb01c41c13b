using System.Text.Json;

namespace Distill.Data.Synthesis;

/// <summary>Reads SDFT training data: LLaMA-Factory "alpaca"-format JSON arrays or JSONL, with the column names of the official datasets.</summary>
public static class SdftDataset
{
    private static readonly string[] PromptKeys = ["instruction", "question", "prompt", "goal"];
    private static readonly string[] ResponseKeys = ["output", "answer", "response", "target"];

    /// <summary>
    /// Reads rows with a prompt column (<c>instruction</c>, <c>question</c>, <c>prompt</c> or <c>goal</c>), an optional
    /// <c>input</c>, and a response column (<c>output</c>, <c>answer</c>, <c>response</c> or <c>target</c>), e.g. the official
    /// <c>alpaca_train.json</c> or <c>gsm8k_train.json</c>.
    /// </summary>
    /// <param name="path">A <c>.json</c> array or <c>.jsonl</c> file.</param>
    /// <returns>The rows in file order (not stripped; the synthesizer strips as the official code does).</returns>
    /// <exception cref="InvalidDataException">A row lacks a prompt or response, a field is not a string, or a row has a non-empty <c>history</c> (multi-turn rows are not supported); the message names the file and line or element.</exception>
    public static IReadOnlyList<InstructionExample> Read(string path)
    {
        var rows = new List<InstructionExample>();
        foreach (var row in JsonDatasetReader.ReadRows(path))
        {
            var prompt = Find(row, PromptKeys) ?? throw row.Error($"row has no prompt (expected one of {string.Join(", ", PromptKeys.Select(k => $"'{k}'"))})");
            var response = Find(row, ResponseKeys) ?? throw row.Error($"row has no response (expected one of {string.Join(", ", ResponseKeys.Select(k => $"'{k}'"))})");
            var input = Find(row, ["input"]) ?? string.Empty;
            if (row.Element.TryGetProperty("history", out var history) && history.ValueKind == JsonValueKind.Array && history.GetArrayLength() > 0)
            {
                throw row.Error("row has a non-empty 'history'; multi-turn SDFT rows are not supported");
            }

            rows.Add(new InstructionExample(prompt, input, response));
        }

        return rows;
    }

    private static string? Find(JsonDatasetReader.Row row, string[] keys)
    {
        foreach (var key in keys)
        {
            if (row.Element.TryGetProperty(key, out var value) && value.ValueKind != JsonValueKind.Null)
            {
                return value.ValueKind == JsonValueKind.String ? value.GetString() : throw row.Error($"'{key}' must be a string, got {value.ValueKind}");
            }
        }

        return null;
    }
}
