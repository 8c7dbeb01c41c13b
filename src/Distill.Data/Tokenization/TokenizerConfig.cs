using System.Text.Json;

namespace Distill.Data;

/// <summary>The parts of <c>tokenizer_config.json</c> (and <c>special_tokens_map.json</c>) Distill uses.</summary>
internal sealed class TokenizerConfig
{
    public string? BosToken { get; set; }

    public string? EosToken { get; set; }

    public string? PadToken { get; set; }

    public string? UnkToken { get; set; }

    public bool? AddBosToken { get; set; }

    public bool? AddEosToken { get; set; }

    public List<AddedToken> AddedTokensDecoder { get; } = [];

    /// <summary>Reads tokenizer_config.json then fills the gaps from special_tokens_map.json; absent files give an empty config.</summary>
    public static TokenizerConfig Load(string directory)
    {
        var config = new TokenizerConfig();
        var configPath = Path.Combine(directory, "tokenizer_config.json");
        if (File.Exists(configPath))
        {
            config.Read(Distill.IO.InputFile.ReadAllText(configPath), configPath, readFlags: true);
        }

        var mapPath = Path.Combine(directory, "special_tokens_map.json");
        if (File.Exists(mapPath))
        {
            config.Read(Distill.IO.InputFile.ReadAllText(mapPath), mapPath, readFlags: false);
        }

        return config;
    }

    /// <summary>Parses <paramref name="json"/>; keys already set are kept (the first file read wins).</summary>
    public void Read(string json, string source, bool readFlags)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(json, new JsonDocumentOptions { AllowTrailingCommas = true });
        }
        catch (JsonException ex)
        {
            throw new InvalidDataException($"{source}: not valid JSON ({ex.Message}).", ex);
        }

        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                throw new InvalidDataException($"{source}: expected a JSON object.");
            }

            BosToken ??= TokenString(root, "bos_token", source);
            EosToken ??= TokenString(root, "eos_token", source);
            PadToken ??= TokenString(root, "pad_token", source);
            UnkToken ??= TokenString(root, "unk_token", source);
            if (!readFlags)
            {
                return;
            }

            AddBosToken ??= OptionalBool(root, "add_bos_token", source);
            AddEosToken ??= OptionalBool(root, "add_eos_token", source);
            if (root.TryGetProperty("added_tokens_decoder", out var decoder) && decoder.ValueKind == JsonValueKind.Object)
            {
                foreach (var entry in decoder.EnumerateObject())
                {
                    if (!int.TryParse(entry.Name, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var id)
                        || !entry.Value.TryGetProperty("content", out var content) || content.ValueKind != JsonValueKind.String)
                    {
                        throw new InvalidDataException($"{source}: added_tokens_decoder['{entry.Name}'] needs an integer key and a string 'content'.");
                    }

                    AddedTokensDecoder.Add(new AddedToken(
                        id,
                        content.GetString()!,
                        entry.Value.TryGetProperty("special", out var sp) && sp.ValueKind == JsonValueKind.True,
                        entry.Value.TryGetProperty("lstrip", out var ls) && ls.ValueKind == JsonValueKind.True,
                        entry.Value.TryGetProperty("rstrip", out var rs) && rs.ValueKind == JsonValueKind.True));
                }
            }
        }
    }

    // A special token is written as "text", as {"content": "text", ...} (AddedToken), or null.
    private static string? TokenString(JsonElement root, string key, string source)
    {
        if (!root.TryGetProperty(key, out var value))
        {
            return null;
        }

        return value.ValueKind switch
        {
            JsonValueKind.Null => null,
            JsonValueKind.String => value.GetString(),
            JsonValueKind.Object when value.TryGetProperty("content", out var c) && c.ValueKind == JsonValueKind.String => c.GetString(),
            _ => throw new InvalidDataException($"{source}: '{key}' must be a string, an object with 'content', or null."),
        };
    }

    private static bool? OptionalBool(JsonElement root, string key, string source)
    {
        if (!root.TryGetProperty(key, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        return value.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw new InvalidDataException($"{source}: '{key}' must be true or false."),
        };
    }
}
