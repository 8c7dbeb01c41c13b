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

    /// <summary>Gets the SentencePiece-style space handling when the file uses it (and nothing unsupported), else null.</summary>
    public MetaspaceSpec? Metaspace { get; init; }

    /// <summary>Gets a value indicating whether unknown characters fall back to <c>&lt;0xNN&gt;</c> byte tokens.</summary>
    public bool ByteFallback { get; init; }

    /// <summary>Gets the model's unk token, or null.</summary>
    public string? UnkToken { get; init; }

    /// <summary>Gets a description of what makes a non-byte-level file unsupported without tokenizer.model, or null.</summary>
    public string? NonByteLevelReason { get; init; }
}

/// <summary>What the normaliser and pre-tokenizer say about SentencePiece-style space handling.</summary>
internal sealed class MetaspaceState
{
    public string? Prepend { get; set; }

    public bool ReplacesSpace { get; set; }

    public bool MetaspacePreTokenizer { get; set; }

    public string Replacement { get; set; } = "▁";

    public string Scheme { get; set; } = "always";

    public bool Split { get; set; }

    public string? Unsupported { get; set; }
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
            doc = JsonDocument.Parse(json, new JsonDocumentOptions { AllowTrailingCommas = true, AllowDuplicateProperties = false });
        }
        catch (JsonException ex)
        {
            if (Distill.IO.InputFile.FindRepeatedKey(json) is { } repeated)
            {
                throw new InvalidDataException($"{source}: key '{Distill.IO.InputFile.Bound(repeated.Key)}' appears twice in the same object (line {repeated.Line}).", ex);
            }

            throw new InvalidDataException($"{source}: not valid JSON ({Distill.IO.InputFile.Bound(ex.Message)}).", ex);
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
            var metaspace = new MetaspaceState();
            if (root.TryGetProperty("pre_tokenizer", out var pre) && pre.ValueKind == JsonValueKind.Object)
            {
                ReadPreTokenizer(pre, source, stages, ref byteLevelPre, ref addPrefixSpace, ref nonByteLevel, metaspace);
            }

            var byteLevelDecoder = root.TryGetProperty("decoder", out var dec) && dec.ValueKind == JsonValueKind.Object && ContainsType(dec, "ByteLevel");
            var steps = new List<string>();
            if (root.TryGetProperty("normalizer", out var norm) && norm.ValueKind == JsonValueKind.Object)
            {
                ReadNormalizer(norm, source, steps, ref nonByteLevel, metaspace);
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
                Metaspace = BuildMetaspace(metaspace, stages.Count, steps.Count),
                ByteFallback = model.TryGetProperty("byte_fallback", out var bf) && bf.ValueKind == JsonValueKind.True,
                UnkToken = OptionalString(model, "unk_token"),
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

    private static MetaspaceSpec? BuildMetaspace(MetaspaceState state, int splitStages, int normaliserSteps)
    {
        if (state.Unsupported is not null || splitStages > 0 || normaliserSteps > 0)
        {
            return null;
        }

        if (state.MetaspacePreTokenizer)
        {
            return new MetaspaceSpec(state.Replacement, state.Scheme, state.Split, PrependOnlyIfMissing: true);
        }

        // Legacy Llama conversion: Prepend("▁") then Replace(" " → "▁"), no pre-tokenizer: one word per segment.
        return state.ReplacesSpace
            ? new MetaspaceSpec(state.Replacement, state.Prepend is null ? "never" : "always", Split: false, PrependOnlyIfMissing: false)
            : null;
    }

    private static void ReadPreTokenizer(JsonElement pre, string source, List<SplitStage> stages, ref bool byteLevel, ref bool addPrefixSpace, ref string? nonByteLevel, MetaspaceState metaspace)
    {
        var type = pre.GetProperty("type").GetString();
        switch (type)
        {
            case "Sequence":
                foreach (var inner in pre.GetProperty("pretokenizers").EnumerateArray())
                {
                    ReadPreTokenizer(inner, source, stages, ref byteLevel, ref addPrefixSpace, ref nonByteLevel, metaspace);
                }

                break;
            case "ByteLevel":
                byteLevel = true;
                addPrefixSpace |= Flag(pre, "add_prefix_space");
                if (!pre.TryGetProperty("use_regex", out var useRegex) || useRegex.ValueKind != JsonValueKind.False)
                {
                    stages.Add(new SplitStage(TokenizerRegex.Create(PreTokenizerPipeline.Gpt2Pattern), SplitBehavior.Isolated));
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
                    compiled = TokenizerRegex.Create(regex);
                }
                catch (ArgumentException ex)
                {
                    throw new NotSupportedException($"{source}: the Split regex '{Distill.IO.InputFile.Bound(regex)}' is not valid in .NET ({ex.Message}).", ex);
                }

                var behavior = pre.TryGetProperty("behavior", out var b) ? b.GetString() : "Isolated";
                stages.Add(new SplitStage(compiled, behavior switch
                {
                    "Removed" => SplitBehavior.Removed,
                    "Isolated" => SplitBehavior.Isolated,
                    "MergedWithPrevious" => SplitBehavior.MergedWithPrevious,
                    "MergedWithNext" => SplitBehavior.MergedWithNext,
                    "Contiguous" => SplitBehavior.Contiguous,
                    _ => throw new NotSupportedException($"{source}: Split behavior '{Distill.IO.InputFile.Bound(behavior)}' is not supported."),
                }, source));
                break;
            case "Digits":
                // individual_digits: every digit alone; otherwise runs of digits stay together.
                stages.Add(new SplitStage(TokenizerRegex.Create(Flag(pre, "individual_digits") ? @"\p{N}" : @"\p{N}+"), SplitBehavior.Isolated));
                break;
            case "Whitespace":
                stages.Add(new SplitStage(TokenizerRegex.Create(@"\w+|[^\w\s]+"), SplitBehavior.Isolated));
                stages.Add(new SplitStage(TokenizerRegex.Create(@"\s+"), SplitBehavior.Removed));
                break;
            case "WhitespaceSplit":
                stages.Add(new SplitStage(TokenizerRegex.Create(@"\s+"), SplitBehavior.Removed));
                break;
            case "Punctuation":
                stages.Add(new SplitStage(TokenizerRegex.Create(@"\p{P}"), SplitBehavior.Isolated));
                break;
            case "Metaspace":
                nonByteLevel ??= "pre_tokenizer Metaspace (SentencePiece-style)";
                metaspace.MetaspacePreTokenizer = true;
                metaspace.Replacement = pre.TryGetProperty("replacement", out var rep) && rep.GetString() is { Length: > 0 } r2 ? r2 : "▁";
                metaspace.Scheme = pre.TryGetProperty("prepend_scheme", out var scheme) && scheme.ValueKind == JsonValueKind.String
                    ? scheme.GetString()!
                    : (!pre.TryGetProperty("add_prefix_space", out var aps) || aps.ValueKind != JsonValueKind.False ? "always" : "never");
                metaspace.Split = !pre.TryGetProperty("split", out var split) || split.ValueKind != JsonValueKind.False;
                if (metaspace.Scheme is not ("always" or "first" or "never"))
                {
                    metaspace.Unsupported = $"Metaspace prepend_scheme '{metaspace.Scheme}'";
                }

                break;
            default:
                throw new NotSupportedException($"{source}: pre_tokenizer type '{type}' is not supported.");
        }
    }

    private static void ReadNormalizer(JsonElement norm, string source, List<string> steps, ref string? nonByteLevel, MetaspaceState metaspace)
    {
        var type = norm.GetProperty("type").GetString();
        switch (type)
        {
            case "Sequence":
                foreach (var inner in norm.GetProperty("normalizers").EnumerateArray())
                {
                    ReadNormalizer(inner, source, steps, ref nonByteLevel, metaspace);
                }

                break;
            case "NFC" or "NFD" or "NFKC" or "NFKD" or "Lowercase":
                steps.Add(type);
                break;
            case "Prepend":
                nonByteLevel ??= "normalizer Prepend (SentencePiece-style)";
                metaspace.Prepend = norm.TryGetProperty("prepend", out var prepend) ? prepend.GetString() : null;
                if (metaspace.Prepend != metaspace.Replacement)
                {
                    metaspace.Unsupported = $"normalizer Prepend '{metaspace.Prepend}'";
                }

                break;
            case "Replace":
                nonByteLevel ??= "normalizer Replace (SentencePiece-style)";
                if (norm.TryGetProperty("pattern", out var pattern) && pattern.TryGetProperty("String", out var from) && from.GetString() == " "
                    && norm.TryGetProperty("content", out var to) && to.GetString() is { Length: > 0 } replacement)
                {
                    metaspace.ReplacesSpace = true;
                    metaspace.Replacement = replacement;
                }
                else
                {
                    metaspace.Unsupported = "normalizer Replace other than space → marker";
                }

                break;
            case "Strip" or "StripAccents" or "Precompiled":
                nonByteLevel ??= $"normalizer {type} (SentencePiece-style)";
                metaspace.Unsupported = $"normalizer {type}";
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
