using System.Text;
using System.Text.Json;
using Distill.IO;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Distill.Data;

/// <summary>The subword algorithm behind an <see cref="HfTokenizer"/>.</summary>
public enum TokenizerKind
{
    /// <summary>Byte-level BPE from tokenizer.json or vocab.json + merges.txt (GPT-2, Llama 3, Qwen2, Mistral-Nemo).</summary>
    ByteLevelBpe,

    /// <summary>SentencePiece-style BPE (Llama 2, TinyLlama, Mistral v0.1): from tokenizer.model, or from a Metaspace / Prepend+Replace tokenizer.json with byte fallback.</summary>
    SentencePiece,
}

/// <summary>
/// A Hugging Face tokenizer folder loaded on Microsoft.ML.Tokenizers: encode with character offsets, decode, special tokens.
/// </summary>
/// <remarks>
/// <para>Loading order in <see cref="FromPretrained"/>, preferring tokenizer.json as transformers' AutoTokenizer does:
/// a byte-level BPE <c>tokenizer.json</c>; a SentencePiece-style BPE <c>tokenizer.json</c> (Metaspace pre-tokenizer or
/// Prepend+Replace normaliser, byte fallback); else <c>tokenizer.model</c> (SentencePiece; added tokens of an unusable
/// tokenizer.json next to it are kept); else <c>vocab.json</c> + <c>merges.txt</c> (GPT-2 slow format). Special tokens and <c>add_bos_token</c>/<c>add_eos_token</c>
/// come from <c>tokenizer_config.json</c> (then <c>special_tokens_map.json</c>); BOS/EOS insertion from the
/// tokenizer.json post-processor when the config says nothing.</para>
/// <para>Added tokens are matched verbatim in the raw text (leftmost-longest, <c>lstrip</c>/<c>rstrip</c> honoured;
/// <c>single_word</c> and <c>normalized</c> are not). Normalisers that change the length of the text (NFC on
/// decomposed input) make offsets index the normalised text. Decoding does no <c>clean_up_tokenization_spaces</c>.</para>
/// <para>Instances are immutable and thread-safe.</para>
/// </remarks>
public sealed class HfTokenizer
{
    private readonly ITokenModel _model;
    private readonly Dictionary<string, int> _tokenToId;
    private readonly string?[] _idToToken;
    private readonly Dictionary<int, AddedToken> _addedById;
    private readonly AddedTokenSplitter _splitter;
    private readonly HashSet<int> _specialIds;
    private readonly int[] _prefixIds;
    private readonly int[] _suffixIds;

    /// <summary>The tokenizer files this instance was built from (name → bytes), written back by <see cref="SavePretrained"/>.</summary>
    private IReadOnlyDictionary<string, byte[]> _files = new Dictionary<string, byte[]>(StringComparer.Ordinal);

    private HfTokenizer(
        ITokenModel model,
        TokenizerKind kind,
        IReadOnlyList<AddedToken> addedTokens,
        TokenizerConfig config,
        IReadOnlyList<string>? templatePrefix,
        IReadOnlyList<string>? templateSuffix,
        int? defaultBos,
        int? defaultEos,
        int? defaultUnk,
        string source)
    {
        _model = model;
        Kind = kind;
        Source = source;
        _tokenToId = new Dictionary<string, int>(model.Vocabulary, StringComparer.Ordinal);
        _addedById = [];
        foreach (var token in addedTokens)
        {
            _addedById[token.Id] = token;
            _tokenToId[token.Content] = token.Id;
        }

        var maxId = _tokenToId.Count == 0 ? -1 : _tokenToId.Values.Max();
        _idToToken = new string?[maxId + 1];
        foreach (var (token, id) in model.Vocabulary)
        {
            _idToToken[id] = token;
        }

        foreach (var token in addedTokens)
        {
            _idToToken[token.Id] = token.Content;
        }

        _splitter = new AddedTokenSplitter(addedTokens);
        BosTokenId = Resolve(config.BosToken, "bos_token", source) ?? defaultBos;
        EosTokenId = Resolve(config.EosToken, "eos_token", source) ?? defaultEos;
        PadTokenId = Resolve(config.PadToken, "pad_token", source);
        UnkTokenId = Resolve(config.UnkToken, "unk_token", source) ?? defaultUnk;

        _specialIds = [.. addedTokens.Where(t => t.Special).Select(t => t.Id)];
        foreach (var id in new[] { BosTokenId, EosTokenId, PadTokenId, UnkTokenId })
        {
            if (id is int value)
            {
                _specialIds.Add(value);
            }
        }

        var prefix = (templatePrefix ?? []).Select(t => Resolve(t, "post_processor", source)!.Value).ToList();
        var suffix = (templateSuffix ?? []).Select(t => Resolve(t, "post_processor", source)!.Value).ToList();
        ApplyFlag(prefix, BosTokenId, config.AddBosToken, "add_bos_token", source);
        ApplyFlag(suffix, EosTokenId, config.AddEosToken, "add_eos_token", source);
        _prefixIds = [.. prefix];
        _suffixIds = [.. suffix];
    }

    private const string TokenizerJsonFile = "tokenizer.json";
    private const string TokenizerConfigFile = "tokenizer_config.json";

    /// <summary>Files of a Hugging Face tokenizer folder that <see cref="FromPretrained"/> keeps for <see cref="SavePretrained"/>.</summary>
    private static readonly string[] FileNames =
        [TokenizerJsonFile, TokenizerConfigFile, "special_tokens_map.json", "added_tokens.json", "tokenizer.model", "vocab.json", "merges.txt"];

    /// <summary>Gets the subword algorithm.</summary>
    public TokenizerKind Kind { get; }

    /// <summary>Gets where the tokenizer was loaded from (a folder or a resource name).</summary>
    public string Source { get; }

    /// <summary>Gets the largest token id + 1, added tokens included: the number of embedding rows the ids need (equal to <c>len(tokenizer)</c> in transformers when the ids have no gaps).</summary>
    public int VocabSize => _idToToken.Length;

    /// <summary>Gets the BOS id, or <see langword="null"/> when the tokenizer has none.</summary>
    public int? BosTokenId { get; }

    /// <summary>Gets the EOS id, or <see langword="null"/> when the tokenizer has none.</summary>
    public int? EosTokenId { get; }

    /// <summary>Gets the padding id from the config, or <see langword="null"/> (batching then pads with EOS, as DSKD does).</summary>
    public int? PadTokenId { get; }

    /// <summary>Gets the unknown-token id, or <see langword="null"/>.</summary>
    public int? UnkTokenId { get; }

    /// <summary>Gets the ids <see cref="Encode(string, bool)"/> puts before the text when <c>addSpecialTokens</c> is true.</summary>
    public IReadOnlyList<int> PrefixSpecialIds => _prefixIds;

    /// <summary>Gets the ids <see cref="Encode(string, bool)"/> puts after the text when <c>addSpecialTokens</c> is true.</summary>
    public IReadOnlyList<int> SuffixSpecialIds => _suffixIds;

    /// <summary>Gets the character the vocabulary uses for a leading space: <c>Ġ</c> (byte-level BPE) or <c>▁</c> (SentencePiece).</summary>
    public string SpaceMarker => _model.SpaceMarker;

    /// <summary>Gets every token string → id, added tokens included.</summary>
    public IReadOnlyDictionary<string, int> Vocabulary => _tokenToId;

    /// <summary>
    /// Loads the tokenizer in <paramref name="directory"/> and, when a <c>config.json</c> sits next to it, checks its
    /// <c>vocab_size</c> (smaller than the tokenizer: error; larger: warning, since embedding tables are often padded).
    /// </summary>
    /// <param name="directory">A Hugging Face model or tokenizer folder.</param>
    /// <param name="logger">Optional logger for the load summary and the vocab-size warning.</param>
    /// <exception cref="DirectoryNotFoundException">The folder does not exist.</exception>
    /// <exception cref="FileNotFoundException">No tokenizer.json, tokenizer.model or vocab.json + merges.txt in the folder.</exception>
    /// <exception cref="NotSupportedException">The tokenizer format or one of its components is not supported.</exception>
    /// <exception cref="InvalidDataException">A file is malformed, a special token is not in the vocabulary, or config.json's vocab_size is smaller than the tokenizer's.</exception>
    public static HfTokenizer FromPretrained(string directory, ILogger? logger = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        logger ??= NullLogger.Instance;
        if (!Directory.Exists(directory))
        {
            throw new DirectoryNotFoundException($"Tokenizer folder '{directory}' does not exist.");
        }

        var config = TokenizerConfig.Load(directory);
        var jsonPath = Path.Combine(directory, "tokenizer.json");
        var spPath = Path.Combine(directory, "tokenizer.model");
        var vocabPath = Path.Combine(directory, "vocab.json");
        var mergesPath = Path.Combine(directory, "merges.txt");
        HfTokenizer tokenizer;
        TokenizerJsonDefinition? definition = File.Exists(jsonPath) ? TokenizerJsonReader.Parse(InputFile.ReadAllText(jsonPath), jsonPath) : null;
        if (definition is { IsByteLevel: true })
        {
            tokenizer = FromDefinition(definition, config, jsonPath);
        }
        else if (definition is { Metaspace: not null })
        {
            // transformers' AutoTokenizer uses tokenizer.json (the fast tokenizer) when it exists.
            tokenizer = FromMetaspaceDefinition(definition, config, jsonPath);
        }
        else if (File.Exists(spPath))
        {
            tokenizer = FromSentencePiece(spPath, definition?.AddedTokens, config);
        }
        else if (definition is not null)
        {
            throw new NotSupportedException($"{jsonPath}: a non-byte-level BPE tokenizer.json ({definition.NonByteLevelReason}) needs the SentencePiece tokenizer.model next to it; '{spPath}' is missing.");
        }
        else if (File.Exists(vocabPath) && File.Exists(mergesPath))
        {
            tokenizer = FromVocabAndMerges(vocabPath, mergesPath, config);
        }
        else
        {
            throw new FileNotFoundException($"No tokenizer in '{directory}': expected tokenizer.json, tokenizer.model, or vocab.json + merges.txt.", jsonPath);
        }

        tokenizer._files = FileNames
            .Where(name => File.Exists(Path.Combine(directory, name)))
            .ToDictionary(name => name, name => File.ReadAllBytes(Path.Combine(directory, name)), StringComparer.Ordinal);
        Log.TokenizerLoaded(logger, directory, tokenizer.Kind.ToString(), tokenizer.VocabSize, tokenizer.BosTokenId, tokenizer.EosTokenId, tokenizer.PadTokenId, tokenizer.UnkTokenId);
        var modelConfig = Path.Combine(directory, "config.json");
        if (File.Exists(modelConfig))
        {
            tokenizer.CheckModelVocabSize(modelConfig, logger);
        }

        return tokenizer;
    }

    /// <summary>Loads a byte-level BPE tokenizer from the text of a tokenizer.json and, optionally, a tokenizer_config.json.</summary>
    /// <param name="tokenizerJson">The content of tokenizer.json.</param>
    /// <param name="tokenizerConfigJson">The content of tokenizer_config.json, or <see langword="null"/>.</param>
    /// <param name="source">A name for error messages (e.g. the resource name).</param>
    /// <returns>The tokenizer.</returns>
    public static HfTokenizer FromJson(string tokenizerJson, string? tokenizerConfigJson, string source)
    {
        ArgumentNullException.ThrowIfNull(tokenizerJson);
        var definition = TokenizerJsonReader.Parse(tokenizerJson, source);
        if (!definition.IsByteLevel && definition.Metaspace is null)
        {
            throw new NotSupportedException($"{source}: this tokenizer.json needs its SentencePiece tokenizer.model ({definition.NonByteLevelReason}); load its folder with FromPretrained.");
        }

        var config = new TokenizerConfig();
        if (tokenizerConfigJson is not null)
        {
            config.Read(tokenizerConfigJson, source + " (tokenizer_config)", readFlags: true);
        }

        var tokenizer = definition.IsByteLevel ? FromDefinition(definition, config, source) : FromMetaspaceDefinition(definition, config, source);
        var files = new Dictionary<string, byte[]>(StringComparer.Ordinal) { [TokenizerJsonFile] = Encoding.UTF8.GetBytes(tokenizerJson) };
        if (tokenizerConfigJson is not null)
        {
            files[TokenizerConfigFile] = Encoding.UTF8.GetBytes(tokenizerConfigJson);
        }

        tokenizer._files = files;
        return tokenizer;
    }

    /// <summary>
    /// Gets the names of the tokenizer files this instance was built from and <see cref="SavePretrained"/> writes
    /// (e.g. <c>tokenizer.json</c>, <c>tokenizer_config.json</c>, <c>special_tokens_map.json</c>, <c>tokenizer.model</c>).
    /// </summary>
    public IReadOnlyCollection<string> FileNamesToSave => [.. _files.Keys.Order(StringComparer.Ordinal)];

    /// <summary>
    /// Writes the tokenizer files this instance was loaded from into <paramref name="directory"/>, byte for byte, so that the
    /// folder opens with transformers' <c>AutoTokenizer.from_pretrained</c> (and with <see cref="FromPretrained"/>). Next to
    /// a model saved with <c>SavePretrained</c>, the folder is a complete Hugging Face model folder.
    /// </summary>
    /// <param name="directory">The folder; created when missing. Each file is written atomically (temporary file, then rename).</param>
    /// <returns><paramref name="directory"/>.</returns>
    /// <exception cref="InvalidOperationException">The tokenizer was built without any file to write back.</exception>
    public string SavePretrained(string directory)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        if (_files.Count == 0)
        {
            throw new InvalidOperationException($"Tokenizer from {Source} has no files to save.");
        }

        Directory.CreateDirectory(directory);
        foreach (var (name, bytes) in _files)
        {
            AtomicFile.WriteAllBytes(Path.Combine(directory, name), bytes);
        }

        return directory;
    }

    /// <summary>
    /// Checks a model's <c>config.json</c> <c>vocab_size</c> against <see cref="VocabSize"/>: smaller throws (the model
    /// cannot embed every id the tokenizer emits), larger logs a warning (padded embedding tables are common).
    /// </summary>
    /// <param name="configJsonPath">Path of the model's config.json.</param>
    /// <param name="logger">Optional logger for the warning.</param>
    /// <exception cref="InvalidDataException">vocab_size is missing, not an integer, or smaller than the tokenizer's vocabulary.</exception>
    public void CheckModelVocabSize(string configJsonPath, ILogger? logger = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(configJsonPath);
        int modelVocab;
        try
        {
            using var doc = JsonDocument.Parse(InputFile.ReadAllText(configJsonPath));
            if (doc.RootElement.ValueKind != JsonValueKind.Object || !doc.RootElement.TryGetProperty("vocab_size", out var v)
                || v.ValueKind != JsonValueKind.Number || !v.TryGetInt32(out modelVocab))
            {
                throw new InvalidDataException($"{configJsonPath}: 'vocab_size' is missing or not an integer.");
            }
        }
        catch (JsonException ex)
        {
            throw new InvalidDataException($"{configJsonPath}: not valid JSON ({ex.Message}).", ex);
        }

        CheckModelVocabSize(modelVocab, configJsonPath, logger);
    }

    /// <summary>Checks a model's vocabulary size against <see cref="VocabSize"/> (see <see cref="CheckModelVocabSize(string, ILogger?)"/>).</summary>
    /// <param name="modelVocabSize">The number of embedding rows / logits of the model.</param>
    /// <param name="source">A name for messages (e.g. the config path).</param>
    /// <param name="logger">Optional logger for the warning.</param>
    /// <exception cref="InvalidDataException">The model has fewer rows than the tokenizer has ids.</exception>
    public void CheckModelVocabSize(int modelVocabSize, string source, ILogger? logger = null)
    {
        if (modelVocabSize < VocabSize)
        {
            throw new InvalidDataException($"{source}: vocab_size {modelVocabSize} is smaller than the tokenizer's {VocabSize} ids (from {Source}); the model cannot embed every token id.");
        }

        if (modelVocabSize > VocabSize)
        {
            Log.ModelVocabLarger(logger ?? NullLogger.Instance, source, modelVocabSize, VocabSize);
        }
    }

    /// <summary>Encodes <paramref name="text"/> to ids with the character span of every token.</summary>
    /// <param name="text">The text; added/special tokens written in it (e.g. <c>&lt;|endoftext|&gt;</c>) are recognised.</param>
    /// <param name="addSpecialTokens">Whether to add the BOS/EOS the tokenizer adds by default (its post-processor or <c>add_bos_token</c>); their spans are empty.</param>
    /// <returns>Ids and spans.</returns>
    public TokenizedText Encode(string text, bool addSpecialTokens)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = new List<int>(text.Length / 3 + 4);
        var spans = new List<TokenSpan>(ids.Capacity);
        if (addSpecialTokens)
        {
            foreach (var id in _prefixIds)
            {
                ids.Add(id);
                spans.Add(new TokenSpan(0, 0));
            }
        }

        var segmentIds = new List<int>();
        var segmentSpans = new List<TokenSpan>();
        foreach (var segment in _splitter.Split(text))
        {
            if (segment.Token is not null)
            {
                ids.Add(segment.Token.Id);
                spans.Add(new TokenSpan(segment.Start, segment.End));
                continue;
            }

            segmentIds.Clear();
            segmentSpans.Clear();
            _model.Encode(text[segment.Start..segment.End], segment.Start == 0, segmentIds, segmentSpans);
            ids.AddRange(segmentIds);
            spans.AddRange(segmentSpans.Select(s => WholeCodePoints(text, s.Start + segment.Start, s.End + segment.Start)));
        }

        if (addSpecialTokens)
        {
            foreach (var id in _suffixIds)
            {
                ids.Add(id);
                spans.Add(new TokenSpan(text.Length, text.Length));
            }
        }

        return new TokenizedText([.. ids], [.. spans]);
    }

    /// <summary>Encodes <paramref name="text"/> to ids only.</summary>
    /// <param name="text">The text.</param>
    /// <param name="addSpecialTokens">Whether to add the default BOS/EOS.</param>
    /// <returns>The ids.</returns>
    public IReadOnlyList<int> EncodeToIds(string text, bool addSpecialTokens) => Encode(text, addSpecialTokens).Ids;

    /// <summary>Decodes ids to text.</summary>
    /// <param name="ids">Token ids; ids outside the vocabulary are an error.</param>
    /// <param name="skipSpecialTokens">Whether to drop special tokens (BOS/EOS/PAD/UNK and added tokens marked special).</param>
    /// <returns>The text; invalid UTF-8 from partial byte-level sequences becomes U+FFFD, as in transformers.</returns>
    /// <exception cref="ArgumentOutOfRangeException">An id is negative or ≥ <see cref="VocabSize"/>.</exception>
    public string Decode(IEnumerable<int> ids, bool skipSpecialTokens)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var builder = new System.Text.StringBuilder();
        var run = new List<int>();
        foreach (var id in ids)
        {
            if ((uint)id >= (uint)_idToToken.Length || _idToToken[id] is null)
            {
                throw new ArgumentOutOfRangeException(nameof(ids), id, $"Token id {id} is not in the vocabulary of {Source} ({VocabSize} ids).");
            }

            var special = _specialIds.Contains(id);
            if (skipSpecialTokens && special)
            {
                continue;
            }

            if (_addedById.TryGetValue(id, out var added))
            {
                Flush();
                builder.Append(added.Content);
            }
            else
            {
                run.Add(id);
            }
        }

        Flush();
        return builder.ToString();

        void Flush()
        {
            if (run.Count > 0)
            {
                builder.Append(_model.Decode(run, _idToToken));
                run.Clear();
            }
        }
    }

    /// <summary>Returns the vocabulary string of each id (e.g. <c>Ġthe</c>, <c>▁the</c>, <c>&lt;0x0A&gt;</c>).</summary>
    /// <param name="ids">Token ids.</param>
    /// <returns>One token string per id.</returns>
    /// <exception cref="ArgumentOutOfRangeException">An id is not in the vocabulary.</exception>
    public IReadOnlyList<string> ConvertIdsToTokens(IEnumerable<int> ids)
    {
        ArgumentNullException.ThrowIfNull(ids);
        return [.. ids.Select(ConvertIdToToken)];
    }

    /// <summary>Returns the vocabulary string of <paramref name="id"/>.</summary>
    /// <param name="id">A token id.</param>
    /// <returns>The token string.</returns>
    /// <exception cref="ArgumentOutOfRangeException">The id is not in the vocabulary.</exception>
    public string ConvertIdToToken(int id) =>
        (uint)id < (uint)_idToToken.Length && _idToToken[id] is { } token
            ? token
            : throw new ArgumentOutOfRangeException(nameof(id), id, $"Token id {id} is not in the vocabulary of {Source} ({VocabSize} ids).");

    /// <summary>Returns the id of a vocabulary string, or <see langword="null"/> when it is not a token.</summary>
    /// <param name="token">A token string as stored in the vocabulary (e.g. <c>Ġthe</c>).</param>
    /// <returns>The id or null.</returns>
    public int? TokenToId(string token)
    {
        ArgumentNullException.ThrowIfNull(token);
        return _tokenToId.TryGetValue(token, out var id) ? id : null;
    }

    /// <summary>Whether <paramref name="id"/> is a special token (BOS/EOS/PAD/UNK or an added token marked special).</summary>
    /// <param name="id">A token id.</param>
    /// <returns>True for special tokens.</returns>
    public bool IsSpecial(int id) => _specialIds.Contains(id);

    // A token holding part of a surrogate pair's bytes covers the whole code point, so spans never cut a pair.
    private static TokenSpan WholeCodePoints(string text, int start, int end)
    {
        if (start > 0 && start < text.Length && char.IsLowSurrogate(text[start]) && char.IsHighSurrogate(text[start - 1]))
        {
            start--;
        }

        if (end > 0 && end < text.Length && char.IsLowSurrogate(text[end]) && char.IsHighSurrogate(text[end - 1]))
        {
            end++;
        }

        return new TokenSpan(start, end);
    }

    private static HfTokenizer FromDefinition(TokenizerJsonDefinition definition, TokenizerConfig config, string source)
    {
        ByteLevelBpeModel model;
        try
        {
            model = new ByteLevelBpeModel(
                definition.Vocab,
                definition.Merges,
                definition.PreTokenizer,
                definition.IgnoreMerges,
                definition.AddPrefixSpace,
                definition.Normalization,
                definition.ContinuingSubwordPrefix,
                definition.EndOfWordSuffix);
        }
        catch (Exception ex) when (ex is ArgumentException or InvalidOperationException or FormatException)
        {
            throw new InvalidDataException($"{source}: the BPE model could not be built ({ex.Message}).", ex);
        }

        var added = MergeAdded(definition.AddedTokens, config.AddedTokensDecoder);
        return new HfTokenizer(model, TokenizerKind.ByteLevelBpe, added, config, definition.PrefixTokens, definition.SuffixTokens, null, null, null, source);
    }

    private static HfTokenizer FromMetaspaceDefinition(TokenizerJsonDefinition definition, TokenizerConfig config, string source)
    {
        MetaspaceBpeModel model;
        try
        {
            model = new MetaspaceBpeModel(definition.Vocab, definition.Merges, definition.Metaspace!, definition.ByteFallback, definition.UnkToken);
        }
        catch (Exception ex) when (ex is ArgumentException or InvalidOperationException or FormatException)
        {
            throw new InvalidDataException($"{source}: the BPE model could not be built ({ex.Message}).", ex);
        }

        var added = MergeAdded(definition.AddedTokens, config.AddedTokensDecoder);
        var unk = definition.UnkToken is not null && definition.Vocab.TryGetValue(definition.UnkToken, out var u) ? u : (int?)null;
        return new HfTokenizer(model, TokenizerKind.SentencePiece, added, config, definition.PrefixTokens, definition.SuffixTokens, null, null, unk, source);
    }

    private static HfTokenizer FromSentencePiece(string path, IReadOnlyList<AddedToken>? jsonAdded, TokenizerConfig config)
    {
        SentencePieceModel model;
        try
        {
            InputFile.RequireRegularFile(path);
            using var stream = File.OpenRead(path);
            model = new SentencePieceModel(stream);
        }
        catch (Exception ex) when (ex is ArgumentException or InvalidOperationException or FormatException or IOException or NotSupportedException
            or Google.Protobuf.InvalidProtocolBufferException)
        {
            throw new InvalidDataException($"{path}: not a readable SentencePiece BPE model ({ex.Message}).", ex);
        }

        // SentencePiece's own control pieces (<s>, </s>, <unk>) behave as special added tokens in transformers.
        var added = MergeAdded(jsonAdded ?? [], config.AddedTokensDecoder).ToList();
        foreach (var (token, id) in new[] { (model.BosToken, model.BosId), (model.EosToken, model.EosId), (model.UnkToken, model.UnkId) })
        {
            if (id >= 0 && !added.Any(a => a.Id == id))
            {
                added.Add(new AddedToken(id, token, Special: true, LStrip: false, RStrip: false));
            }
        }

        // LlamaTokenizer defaults: add_bos_token true, add_eos_token false.
        config.AddBosToken ??= true;
        config.AddEosToken ??= false;
        return new HfTokenizer(
            model,
            TokenizerKind.SentencePiece,
            added,
            config,
            null,
            null,
            model.BosId >= 0 ? model.BosId : null,
            model.EosId >= 0 ? model.EosId : null,
            model.UnkId >= 0 ? model.UnkId : null,
            path);
    }

    private static HfTokenizer FromVocabAndMerges(string vocabPath, string mergesPath, TokenizerConfig config)
    {
        Dictionary<string, int> vocab;
        try
        {
            vocab = JsonSerializer.Deserialize<Dictionary<string, int>>(InputFile.ReadAllText(vocabPath))
                ?? throw new InvalidDataException($"{vocabPath}: empty vocabulary.");
        }
        catch (JsonException ex)
        {
            throw new InvalidDataException($"{vocabPath}: expected a JSON object of token → id ({ex.Message}).", ex);
        }

        var merges = new List<string>();
        var lineNumber = 0;
        InputFile.RequireRegularFile(mergesPath);
        foreach (var line in File.ReadLines(mergesPath))
        {
            lineNumber++;
            if (line.StartsWith("#version", StringComparison.Ordinal) || line.Length == 0)
            {
                continue;
            }

            if (line.Split(' ').Length != 2)
            {
                throw new InvalidDataException($"{mergesPath}:{lineNumber}: expected 'left right', got '{InputFile.Bound(line)}'.");
            }

            merges.Add(line);
        }

        var pre = new PreTokenizerPipeline([new SplitStage(TokenizerRegex.Create(PreTokenizerPipeline.Gpt2Pattern), SplitBehavior.Isolated)]);
        var model = new ByteLevelBpeModel(new Dictionary<string, int>(vocab, StringComparer.Ordinal), merges, pre, ignoreMerges: false, addPrefixSpace: false, TextNormalization.None);

        // GPT2Tokenizer's defaults: <|endoftext|> is bos, eos and unk.
        var endOfText = vocab.ContainsKey("<|endoftext|>") ? "<|endoftext|>" : null;
        config.BosToken ??= endOfText;
        config.EosToken ??= endOfText;
        config.UnkToken ??= endOfText;
        var added = MergeAdded([], config.AddedTokensDecoder).ToList();
        if (endOfText is not null && !added.Any(a => a.Content == endOfText))
        {
            added.Add(new AddedToken(vocab[endOfText], endOfText, Special: true, LStrip: false, RStrip: false));
        }

        return new HfTokenizer(model, TokenizerKind.ByteLevelBpe, added, config, null, null, null, null, null, vocabPath);
    }

    private static List<AddedToken> MergeAdded(IReadOnlyList<AddedToken> primary, IReadOnlyList<AddedToken> secondary)
    {
        var merged = new List<AddedToken>(primary);
        var ids = new HashSet<int>(primary.Select(t => t.Id));
        merged.AddRange(secondary.Where(t => ids.Add(t.Id)));
        return merged;
    }

    private static void ApplyFlag(List<int> ids, int? tokenId, bool? flag, string key, string source)
    {
        if (flag is null)
        {
            return;
        }

        if (flag.Value)
        {
            if (tokenId is null)
            {
                throw new InvalidDataException($"{source}: {key} is true but the tokenizer defines no such token.");
            }

            if (!ids.Contains(tokenId.Value))
            {
                if (key == "add_bos_token")
                {
                    ids.Insert(0, tokenId.Value);
                }
                else
                {
                    ids.Add(tokenId.Value);
                }
            }
        }
        else if (tokenId is int id)
        {
            ids.RemoveAll(x => x == id);
        }
    }

    private int? Resolve(string? token, string key, string source)
    {
        if (token is null)
        {
            return null;
        }

        return _tokenToId.TryGetValue(token, out var id)
            ? id
            : throw new InvalidDataException($"{source}: {key} '{token}' is not in the tokenizer's vocabulary.");
    }
}
