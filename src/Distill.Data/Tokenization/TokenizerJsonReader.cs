using System.Text.Json;
using System.Text.RegularExpressions;

namespace Distill.Data;

/// <summary>What a tokenizer.json describes, in the pieces <see cref="HfTokenizer"/> needs.</summary>
internal sealed class TokenizerJsonDefinition
{
    public required Dictionary<string, int> Vocab { get; init; }

    public required List<string> Merges { get; init; }

    public required List<AddedToken> AddedTokens { get; init; }

    public required bool IsByteLevel { get; init; }

    public required bool IgnoreMerges { get; init; }

    public required bool AddPrefixSpace { get; init; }

    public required PreTokenizerPipeline PreTokenizer { get; init; }

    public required TextNormalization Normalization { get; init; }

    public string? ContinuingSubwordPrefix { get; init; }

    public string? EndOfWordSuffix { get; init; }

    /// <summary>Gets the token strings the post-processor puts before the text (e.g. <c>&lt;|begin_of_text|&gt;</c>); null when there is no template.</summary>
    public List<string>? PrefixTokens { get; init; }

    /// <summary>Gets the token strings the post-processor puts after the text.</summary>
    public List<string>? SuffixTokens { get; init; }

    /// <summary>Gets a description of what makes a non-byte-level file unsupported without tokenizer.model, or null.</summary>
    public string? NonByteLevelReason { get; init; }
}

/// <summary>Parses Hugging Face <c>tokenizer.json</c> files (model BPE; byte-level pre-tokenizers, splits, normalisers, post-processors).</summary>
internal static class TokenizerJsonReader
{
    public static TokenizerJsonDefinition Parse(string json, string source)
    {
        try
        {
            return ParseCore(json, source);
        }
        catch (Exception ex) when (ex is KeyNotFoundException or InvalidOperationException or FormatException)
        {
            // A missing key or a value of the wrong JSON kind deep inside the file.
            throw new InvalidDataException($"{source}: unexpected tokenizer.json structure ({ex.Message}).", ex);
        }
    }

    private static TokenizerJsonDefinition ParseCore(string json, string source)
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
            if (!root.TryGetProperty("model", out var model) || model.ValueKind != JsonValueKind.Object)
            {
                throw new InvalidDataException($"{source}: missing the 'model' object.");
            }

            var type = model.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString() : (model.TryGetProperty("merges", out _) ? "BPE" : null);
            if (type != "BPE")
            {
                throw new NotSupportedException($"{source}: model.type '{type ?? "(missing)"}' is not supported; Distill loads BPE tokenizer.json files (and SentencePiece tokenizer.model).");
            }

            var vocab = ReadVocab(model, source);
            var merges = ReadMerges(model, source);
            var added = ReadAddedTokens(root, source);
            var ignoreMerges = model.TryGetProperty("ignore_merges", out var im) && im.ValueKind == JsonValueKind.True;
            var stages = new List<SplitStage>();
            var byteLevelPre = false;
            var addPrefixSpace = false;
            string? nonByteLevel = null;
            if (root.TryGetProperty("pre_tokenizer", out var pre) && pre.ValueKind == JsonValueKind.Object)
            {
                ReadPreTokenizer(pre, source, stages, ref byteLevelPre, ref addPrefixSpace, ref nonByteLevel);
            }

            var byteLevelDecoder = root.TryGetProperty("decoder", out var dec) && dec.ValueKind == JsonValueKind.Object && ContainsType(dec, "ByteLevel");
            var steps = new List<string>();
            if (root.TryGetProperty("normalizer", out var norm) && norm.ValueKind == JsonValueKind.Object)
            {
                ReadNormalizer(norm, source, steps, ref nonByteLevel);
            }

            List<string>? prefix = null, suffix = null;
            if (root.TryGetProperty("post_processor", out var post) && post.ValueKind == JsonValueKind.Object)
            {
                ReadPostProcessor(post, source, ref prefix, ref suffix);
            }

            return new TokenizerJsonDefinition
            {
                Vocab = vocab,
                Merges = merges,
                AddedTokens = added,
                IsByteLevel = (byteLevelPre || byteLevelDecoder) && nonByteLevel is null,
                IgnoreMerges = ignoreMerges,
                AddPrefixSpace = addPrefixSpace,
                PreTokenizer = new PreTokenizerPipeline(stages),
                Normalization = new TextNormalization(steps),
                ContinuingSubwordPrefix = OptionalString(model, "continuing_subword_prefix"),
                EndOfWordSuffix = OptionalString(model, "end_of_word_suffix"),
                PrefixTokens = prefix,
                SuffixTokens = suffix,
                NonByteLevelReason = nonByteLevel ?? (byteLevelPre || byteLevelDecoder ? null : "no ByteLevel pre-tokenizer or decoder"),
            };
        }
    }

    private static Dictionary<string, int> ReadVocab(JsonElement model, string source)
    {
        if (!model.TryGetProperty("vocab", out var vocabElement) || vocabElement.ValueKind != JsonValueKind.Object)
        {
            throw new InvalidDataException($"{source}: model.vocab must be an object of token → id.");
        }

        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var entry in vocabElement.EnumerateObject())
        {
            if (entry.Value.ValueKind != JsonValueKind.Number || !entry.Value.TryGetInt32(out var id) || id < 0)
            {
                throw new InvalidDataException($"{source}: model.vocab['{entry.Name}'] must be a non-negative integer id.");
            }

            vocab[entry.Name] = id;
        }

        return vocab;
    }

    private static List<string> ReadMerges(JsonElement model, string source)
    {
        var merges = new List<string>();
        if (!model.TryGetProperty("merges", out var mergesElement) || mergesElement.ValueKind == JsonValueKind.Null)
        {
            return merges;
        }

        if (mergesElement.ValueKind != JsonValueKind.Array)
        {
            throw new InvalidDataException($"{source}: model.merges must be an array.");
        }

        var index = 0;
        foreach (var merge in mergesElement.EnumerateArray())
        {
            switch (merge.ValueKind)
            {
                case JsonValueKind.String:
                    merges.Add(merge.GetString()!);
                    break;
                case JsonValueKind.Array when merge.GetArrayLength() == 2:
                    // Newer files store [left, right]; Microsoft.ML.Tokenizers reads "left right".
                    var left = merge[0].GetString();
                    var right = merge[1].GetString();
                    if (left is null || right is null || left.Contains(' ', StringComparison.Ordinal) || right.Contains(' ', StringComparison.Ordinal))
                    {
                        throw new NotSupportedException($"{source}: model.merges[{index}] contains a token with a literal space, which the merges format cannot express.");
                    }

                    merges.Add(left + " " + right);
                    break;
                default:
                    throw new InvalidDataException($"{source}: model.merges[{index}] must be \"left right\" or [left, right].");
            }

            index++;
        }

        return merges;
    }

    private static List<AddedToken> ReadAddedTokens(JsonElement root, string source)
    {
        var added = new List<AddedToken>();
        if (!root.TryGetProperty("added_tokens", out var array) || array.ValueKind != JsonValueKind.Array)
        {
            return added;
        }

        var index = 0;
        foreach (var item in array.EnumerateArray())
        {
            if (!item.TryGetProperty("id", out var idElement) || !idElement.TryGetInt32(out var id)
                || !item.TryGetProperty("content", out var content) || content.ValueKind != JsonValueKind.String)
            {
                throw new InvalidDataException($"{source}: added_tokens[{index}] needs an integer 'id' and a string 'content'.");
            }

            added.Add(new AddedToken(id, content.GetString()!, Flag(item, "special"), Flag(item, "lstrip"), Flag(item, "rstrip")));
            index++;
        }

        return added;
    }

    private static void ReadPreTokenizer(JsonElement pre, string source, List<SplitStage> stages, ref bool byteLevel, ref bool addPrefixSpace, ref string? nonByteLevel)
    {
        var type = pre.GetProperty("type").GetString();
        switch (type)
        {
            case "Sequence":
                foreach (var inner in pre.GetProperty("pretokenizers").EnumerateArray())
                {
                    ReadPreTokenizer(inner, source, stages, ref byteLevel, ref addPrefixSpace, ref nonByteLevel);
                }

                break;
            case "ByteLevel":
                byteLevel = true;
                addPrefixSpace |= Flag(pre, "add_prefix_space");
                if (!pre.TryGetProperty("use_regex", out var useRegex) || useRegex.ValueKind != JsonValueKind.False)
                {
                    stages.Add(new SplitStage(new Regex(PreTokenizerPipeline.Gpt2Pattern, RegexOptions.CultureInvariant), SplitBehavior.Isolated));
                }

                break;
            case "Split":
                if (Flag(pre, "invert"))
                {
                    throw new NotSupportedException($"{source}: pre_tokenizer Split with invert=true is not supported.");
                }

                var pattern = pre.GetProperty("pattern");
                string regex;
                if (pattern.TryGetProperty("Regex", out var r))
                {
                    regex = r.GetString()!;
                }
                else if (pattern.TryGetProperty("String", out var s))
                {
                    regex = Regex.Escape(s.GetString()!);
                }
                else
                {
                    throw new InvalidDataException($"{source}: pre_tokenizer Split needs pattern.Regex or pattern.String.");
                }

                Regex compiled;
                try
                {
                    compiled = new Regex(regex, RegexOptions.CultureInvariant);
                }
                catch (ArgumentException ex)
                {
                    throw new NotSupportedException($"{source}: the Split regex '{regex}' is not valid in .NET ({ex.Message}).", ex);
                }

                var behavior = pre.TryGetProperty("behavior", out var b) ? b.GetString() : "Isolated";
                stages.Add(new SplitStage(compiled, behavior switch
                {
                    "Removed" => SplitBehavior.Removed,
                    "Isolated" => SplitBehavior.Isolated,
                    "MergedWithPrevious" => SplitBehavior.MergedWithPrevious,
                    "MergedWithNext" => SplitBehavior.MergedWithNext,
                    "Contiguous" => SplitBehavior.Contiguous,
                    _ => throw new NotSupportedException($"{source}: Split behavior '{behavior}' is not supported."),
                }));
                break;
            case "Digits":
                // individual_digits: every digit alone; otherwise runs of digits stay together.
                stages.Add(new SplitStage(new Regex(Flag(pre, "individual_digits") ? @"\p{N}" : @"\p{N}+", RegexOptions.CultureInvariant), SplitBehavior.Isolated));
                break;
            case "Whitespace":
                stages.Add(new SplitStage(new Regex(@"\w+|[^\w\s]+", RegexOptions.CultureInvariant), SplitBehavior.Isolated));
                stages.Add(new SplitStage(new Regex(@"\s+", RegexOptions.CultureInvariant), SplitBehavior.Removed));
                break;
            case "WhitespaceSplit":
                stages.Add(new SplitStage(new Regex(@"\s+", RegexOptions.CultureInvariant), SplitBehavior.Removed));
                break;
            case "Punctuation":
                stages.Add(new SplitStage(new Regex(@"\p{P}", RegexOptions.CultureInvariant), SplitBehavior.Isolated));
                break;
            case "Metaspace":
                nonByteLevel ??= "pre_tokenizer Metaspace (SentencePiece-style)";
                break;
            default:
                throw new NotSupportedException($"{source}: pre_tokenizer type '{type}' is not supported.");
        }
    }

    private static void ReadNormalizer(JsonElement norm, string source, List<string> steps, ref string? nonByteLevel)
    {
        var type = norm.GetProperty("type").GetString();
        switch (type)
        {
            case "Sequence":
                foreach (var inner in norm.GetProperty("normalizers").EnumerateArray())
                {
                    ReadNormalizer(inner, source, steps, ref nonByteLevel);
                }

                break;
            case "NFC" or "NFD" or "NFKC" or "NFKD" or "Lowercase":
                steps.Add(type);
                break;
            case "Prepend" or "Replace" or "Strip" or "StripAccents" or "Precompiled":
                nonByteLevel ??= $"normalizer {type} (SentencePiece-style)";
                break;
            default:
                throw new NotSupportedException($"{source}: normalizer type '{type}' is not supported.");
        }
    }

    private static void ReadPostProcessor(JsonElement post, string source, ref List<string>? prefix, ref List<string>? suffix)
    {
        var type = post.GetProperty("type").GetString();
        switch (type)
        {
            case "Sequence":
                foreach (var inner in post.GetProperty("processors").EnumerateArray())
                {
                    ReadPostProcessor(inner, source, ref prefix, ref suffix);
                }

                break;
            case "ByteLevel":
                break;
            case "TemplateProcessing":
                prefix = [];
                suffix = [];
                var seenSequence = false;
                foreach (var piece in post.GetProperty("single").EnumerateArray())
                {
                    if (piece.TryGetProperty("Sequence", out _))
                    {
                        seenSequence = true;
                    }
                    else if (piece.TryGetProperty("SpecialToken", out var special))
                    {
                        var id = special.GetProperty("id").GetString()!;
                        var tokens = post.TryGetProperty("special_tokens", out var map) && map.TryGetProperty(id, out var entry)
                            && entry.TryGetProperty("tokens", out var list)
                            ? list.EnumerateArray().Select(x => x.GetString()!).ToList()
                            : [id];
                        (seenSequence ? suffix : prefix).AddRange(tokens);
                    }
                }

                break;
            case "RobertaProcessing" or "BertProcessing":
                prefix = [post.GetProperty("cls")[0].GetString()!];
                suffix = [post.GetProperty("sep")[0].GetString()!];
                break;
            default:
                throw new NotSupportedException($"{source}: post_processor type '{type}' is not supported.");
        }
    }

    private static bool ContainsType(JsonElement element, string type)
    {
        if (element.TryGetProperty("type", out var t) && t.GetString() == type)
        {
            return true;
        }

        foreach (var key in new[] { "decoders", "pretokenizers", "processors" })
        {
            if (element.TryGetProperty(key, out var list) && list.ValueKind == JsonValueKind.Array && list.EnumerateArray().Any(e => ContainsType(e, type)))
            {
                return true;
            }
        }

        return false;
    }

    private static bool Flag(JsonElement element, string name) =>
        element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.True;

    private static string? OptionalString(JsonElement element, string name) =>
        element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String && value.GetString() is { Length: > 0 } s ? s : null;
}
