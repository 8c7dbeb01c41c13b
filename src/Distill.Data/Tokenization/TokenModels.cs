using System.Text;
using Microsoft.ML.Tokenizers;

namespace Distill.Data;

/// <summary>The subword model behind an <see cref="HfTokenizer"/>: encodes plain text segments (no added tokens) and decodes runs of model ids.</summary>
internal interface ITokenModel
{
    /// <summary>Gets the space marker the vocabulary uses (<c>Ġ</c> for byte-level BPE, <c>▁</c> for SentencePiece).</summary>
    string SpaceMarker { get; }

    /// <summary>Gets token → id for the model's own vocabulary (added tokens excluded).</summary>
    IReadOnlyDictionary<string, int> Vocabulary { get; }

    /// <summary>Encodes <paramref name="segment"/>; spans are relative to the segment. <paramref name="isFirst"/>: the segment starts the text.</summary>
    void Encode(string segment, bool isFirst, List<int> ids, List<TokenSpan> spans);

    /// <summary>Decodes a run of model ids to text.</summary>
    string Decode(IReadOnlyList<int> ids, IReadOnlyList<string?> idToToken);
}

/// <summary>A pre-tokenizer that keeps its input whole (the pipeline runs before Microsoft.ML.Tokenizers sees a piece).</summary>
internal sealed class WholeTextPreTokenizer : PreTokenizer
{
    public static readonly WholeTextPreTokenizer Instance = new();

    public override IEnumerable<(int Offset, int Length)> PreTokenize(string text) => PreTokenize(text.AsSpan());

    public override IEnumerable<(int Offset, int Length)> PreTokenize(ReadOnlySpan<char> text) =>
        text.IsEmpty ? [] : [(0, text.Length)];
}

/// <summary>
/// Byte-level BPE (GPT-2, Llama 3, Qwen2, Mistral-Nemo style tokenizer.json) on Microsoft.ML.Tokenizers'
/// <see cref="BpeTokenizer"/> with <see cref="BpeOptions.ByteLevel"/>. Normalisation and pre-tokenisation follow the
/// tokenizer.json; each pre-token piece goes through the BPE merges (or straight to its vocabulary id when
/// <c>ignore_merges</c> is set and the whole piece is a token, as Llama 3 and tiktoken do).
/// </summary>
internal sealed class ByteLevelBpeModel : ITokenModel
{
    private readonly BpeTokenizer _bpe;
    private readonly Dictionary<string, int> _vocab;
    private readonly PreTokenizerPipeline _preTokenizer;
    private readonly bool _ignoreMerges;
    private readonly bool _addPrefixSpace;
    private readonly TextNormalization _normalization;

    public ByteLevelBpeModel(
        Dictionary<string, int> vocab,
        IEnumerable<string> merges,
        PreTokenizerPipeline preTokenizer,
        bool ignoreMerges,
        bool addPrefixSpace,
        TextNormalization normalization,
        string? continuingSubwordPrefix = null,
        string? endOfWordSuffix = null)
    {
        _vocab = vocab;
        _preTokenizer = preTokenizer;
        _ignoreMerges = ignoreMerges;
        _addPrefixSpace = addPrefixSpace;
        _normalization = normalization;
        _bpe = BpeTokenizer.Create(new BpeOptions(vocab)
        {
            Merges = merges,
            ByteLevel = true,
            PreTokenizer = WholeTextPreTokenizer.Instance,
            ContinuingSubwordPrefix = continuingSubwordPrefix,
            EndOfWordSuffix = endOfWordSuffix,
        });
    }

    public string SpaceMarker => "Ġ";

    public IReadOnlyDictionary<string, int> Vocabulary => _vocab;

    public void Encode(string segment, bool isFirst, List<int> ids, List<TokenSpan> spans)
    {
        var text = _normalization.Apply(segment);
        var shift = 0;
        if (_addPrefixSpace && text.Length > 0 && text[0] != ' ')
        {
            // add_prefix_space: encode as if the text started with a space; that space maps to no input character.
            text = " " + text;
            shift = 1;
        }

        var limit = segment.Length;
        foreach (var (offset, length) in _preTokenizer.Split(text))
        {
            var piece = text.Substring(offset, length);
            if (_ignoreMerges && _vocab.TryGetValue(ByteLevelAlphabet.EncodeText(piece), out var whole))
            {
                ids.Add(whole);
                spans.Add(Clamp(offset - shift, offset + length - shift, limit));
                continue;
            }

            foreach (var token in _bpe.EncodeToTokens(piece, out _))
            {
                var (start, count) = token.Offset.GetOffsetAndLength(piece.Length);
                ids.Add(token.Id);
                spans.Add(Clamp(offset + start - shift, offset + start + count - shift, limit));
            }
        }
    }

    public string Decode(IReadOnlyList<int> ids, IReadOnlyList<string?> idToToken)
    {
        var bytes = new List<byte>(ids.Count * 4);
        foreach (var id in ids)
        {
            var token = (uint)id < (uint)idToToken.Count ? idToToken[id] : null;
            if (token is null)
            {
                continue;
            }

            if (!ByteLevelAlphabet.TryDecode(token, bytes))
            {
                // A vocabulary entry outside the byte alphabet (e.g. a special token stored in the vocab): keep it verbatim.
                bytes.AddRange(Encoding.UTF8.GetBytes(token));
            }
        }

        return Encoding.UTF8.GetString(bytes.ToArray());
    }

    private static TokenSpan Clamp(int start, int end, int limit) =>
        new(Math.Clamp(start, 0, limit), Math.Clamp(end, 0, limit));
}

/// <summary>
/// A SentencePiece <c>tokenizer.model</c> (Llama 2, TinyLlama, Mistral v0.1) on Microsoft.ML.Tokenizers'
/// <see cref="SentencePieceTokenizer"/>; BOS/EOS are added by <see cref="HfTokenizer"/>, not here.
/// </summary>
internal sealed class SentencePieceModel : ITokenModel
{
    private readonly SentencePieceTokenizer _sp;
    private readonly Dictionary<string, int> _vocab;

    public SentencePieceModel(Stream modelProto)
    {
        _sp = SentencePieceTokenizer.Create(modelProto, addBeginningOfSentence: false, addEndOfSentence: false);
        _vocab = new Dictionary<string, int>(_sp.Vocabulary, StringComparer.Ordinal);
    }

    public string SpaceMarker => "▁";

    public IReadOnlyDictionary<string, int> Vocabulary => _vocab;

    public int BosId => _sp.BeginningOfSentenceId;

    public int EosId => _sp.EndOfSentenceId;

    public int UnkId => _sp.UnknownId;

    public string BosToken => _sp.BeginningOfSentenceToken;

    public string EosToken => _sp.EndOfSentenceToken;

    public string UnkToken => _sp.UnknownToken;

    public void Encode(string segment, bool isFirst, List<int> ids, List<TokenSpan> spans)
    {
        var tokens = _sp.EncodeToTokens(segment, out var normalized, addBeginningOfSentence: false, addEndOfSentence: false);

        // Offsets index the normalised text; with the dummy prefix it is one character longer than the input.
        var shift = normalized is not null && normalized.Length == segment.Length + 1 && _sp.AddDummyPrefix ? 1 : 0;
        var length = normalized?.Length ?? segment.Length;
        foreach (var token in tokens)
        {
            var (start, count) = token.Offset.GetOffsetAndLength(length);
            ids.Add(token.Id);
            spans.Add(new TokenSpan(
                Math.Clamp(start - shift, 0, segment.Length),
                Math.Clamp(start + count - shift, 0, segment.Length)));
        }
    }

    public string Decode(IReadOnlyList<int> ids, IReadOnlyList<string?> idToToken) => _sp.Decode(ids, considerSpecialTokens: false) ?? string.Empty;
}

/// <summary>The Unicode normalisers byte-level tokenizer.json files use (<c>NFC</c>, <c>NFD</c>, <c>NFKC</c>, <c>NFKD</c>, <c>Lowercase</c>, in sequence).</summary>
internal sealed class TextNormalization
{
    public static readonly TextNormalization None = new([]);

    private readonly IReadOnlyList<string> _steps;

    public TextNormalization(IReadOnlyList<string> steps) => _steps = steps;

    /// <summary>Gets the step names, in order.</summary>
    public IReadOnlyList<string> Steps => _steps;

    public string Apply(string text)
    {
        foreach (var step in _steps)
        {
            text = step switch
            {
                "NFC" => text.Normalize(NormalizationForm.FormC),
                "NFD" => text.Normalize(NormalizationForm.FormD),
                "NFKC" => text.Normalize(NormalizationForm.FormKC),
                "NFKD" => text.Normalize(NormalizationForm.FormKD),
                "Lowercase" => text.ToLowerInvariant(),
                _ => throw new InvalidOperationException($"Unknown normaliser step '{step}'."),
            };
        }

        return text;
    }
}

/// <summary>How a SentencePiece-style tokenizer.json marks spaces (legacy <c>Prepend</c> + <c>Replace</c> normaliser or a <c>Metaspace</c> pre-tokenizer).</summary>
/// <param name="Replacement">The space marker (<c>▁</c>).</param>
/// <param name="PrependScheme"><c>always</c> (every segment), <c>first</c> (only the segment that starts the text) or <c>never</c>.</param>
/// <param name="Split">Whether words are split before each marker (Metaspace <c>split: true</c>).</param>
/// <param name="PrependOnlyIfMissing">Metaspace prepends only when the text does not already start with the marker; the legacy <c>Prepend</c> normaliser always does.</param>
internal sealed record MetaspaceSpec(string Replacement, string PrependScheme, bool Split, bool PrependOnlyIfMissing);

/// <summary>
/// SentencePiece-style BPE from a tokenizer.json (Llama 2 / Mistral / TinyLlama conversions): spaces become <c>▁</c>,
/// <c>▁</c> is prepended, the merges run on characters (Microsoft.ML.Tokenizers' <see cref="BpeTokenizer"/>), and
/// characters missing from the vocabulary fall back to their UTF-8 bytes as <c>&lt;0xNN&gt;</c> tokens (<c>byte_fallback</c>).
/// </summary>
internal sealed class MetaspaceBpeModel : ITokenModel
{
    private readonly BpeTokenizer _bpe;
    private readonly Dictionary<string, int> _vocab;
    private readonly MetaspaceSpec _spec;
    private readonly bool _byteFallback;
    private readonly int? _unkId;

    public MetaspaceBpeModel(Dictionary<string, int> vocab, IEnumerable<string> merges, MetaspaceSpec spec, bool byteFallback, string? unkToken)
    {
        _vocab = vocab;
        _spec = spec;
        _byteFallback = byteFallback;
        _unkId = unkToken is not null && vocab.TryGetValue(unkToken, out var unk) ? unk : null;
        _bpe = BpeTokenizer.Create(new BpeOptions(vocab)
        {
            Merges = merges,
            ByteLevel = false,
            PreTokenizer = WholeTextPreTokenizer.Instance,
        });
    }

    public string SpaceMarker => _spec.Replacement;

    public IReadOnlyDictionary<string, int> Vocabulary => _vocab;

    public void Encode(string segment, bool isFirst, List<int> ids, List<TokenSpan> spans)
    {
        if (segment.Length == 0)
        {
            return;
        }

        // Normalise: spaces → marker, then the marker in front (a one-character shift of every offset).
        var prepend = _spec.PrependScheme == "always" || (_spec.PrependScheme == "first" && isFirst);
        var text = segment.Replace(" ", _spec.Replacement, StringComparison.Ordinal);
        var shift = 0;
        if (prepend && !(_spec.PrependOnlyIfMissing && text.StartsWith(_spec.Replacement, StringComparison.Ordinal)))
        {
            text = _spec.Replacement + text;
            shift = _spec.Replacement.Length;
        }

        var words = new List<(int Start, int Length)>();
        if (_spec.Split)
        {
            // Metaspace split: each word starts at a marker (the marker joins the text after it).
            var start = 0;
            for (var i = 1; i < text.Length; i++)
            {
                if (string.CompareOrdinal(text, i, _spec.Replacement, 0, _spec.Replacement.Length) == 0)
                {
                    words.Add((start, i - start));
                    start = i;
                }
            }

            words.Add((start, text.Length - start));
        }
        else
        {
            words.Add((0, text.Length));
        }

        foreach (var (wordStart, wordLength) in words)
        {
            EncodeWord(text, wordStart, wordLength, shift, segment.Length, ids, spans);
        }
    }

    public string Decode(IReadOnlyList<int> ids, IReadOnlyList<string?> idToToken)
    {
        var bytes = new List<byte>();
        foreach (var id in ids)
        {
            var token = (uint)id < (uint)idToToken.Count ? idToToken[id] : null;
            if (token is null)
            {
                continue;
            }

            if (TryByteToken(token, out var b))
            {
                bytes.Add(b);
            }
            else
            {
                bytes.AddRange(Encoding.UTF8.GetBytes(token.Replace(_spec.Replacement, " ", StringComparison.Ordinal)));
            }
        }

        var text = Encoding.UTF8.GetString(bytes.ToArray());

        // The decoder removes the space the prepended marker stands for.
        return _spec.PrependScheme != "never" && text.StartsWith(' ') ? text[1..] : text;
    }

    internal static bool TryByteToken(string token, out byte value)
    {
        value = 0;
        return token.Length == 6 && token.StartsWith("<0x", StringComparison.Ordinal) && token[5] == '>'
            && byte.TryParse(token.AsSpan(3, 2), System.Globalization.NumberStyles.HexNumber, System.Globalization.CultureInfo.InvariantCulture, out value);
    }

    private void EncodeWord(string text, int wordStart, int wordLength, int shift, int limit, List<int> ids, List<TokenSpan> spans)
    {
        // Runs of characters the vocabulary knows go through the BPE; any other character becomes its UTF-8 bytes.
        var end = wordStart + wordLength;
        var runStart = wordStart;
        var i = wordStart;
        while (i < end)
        {
            var width = char.IsSurrogatePair(text, i) ? 2 : 1;
            if (_vocab.ContainsKey(text.Substring(i, width)))
            {
                i += width;
                continue;
            }

            EncodeRun(text, runStart, i - runStart, shift, limit, ids, spans);
            var span = new TokenSpan(Math.Clamp(i - shift, 0, limit), Math.Clamp(i + width - shift, 0, limit));
            foreach (var b in Encoding.UTF8.GetBytes(text.Substring(i, width)))
            {
                var name = "<0x" + b.ToString("X2", System.Globalization.CultureInfo.InvariantCulture) + ">";
                if (_byteFallback && _vocab.TryGetValue(name, out var byteId))
                {
                    ids.Add(byteId);
                    spans.Add(span);
                }
                else if (_unkId is int unk)
                {
                    ids.Add(unk);
                    spans.Add(span);
                    break;
                }
                else
                {
                    throw new InvalidDataException($"Character U+{char.ConvertToUtf32(text, i):X4} is not in the vocabulary and the tokenizer has neither byte fallback nor an unk token.");
                }
            }

            i += width;
            runStart = i;
        }

        EncodeRun(text, runStart, end - runStart, shift, limit, ids, spans);
    }

    private void EncodeRun(string text, int start, int length, int shift, int limit, List<int> ids, List<TokenSpan> spans)
    {
        if (length == 0)
        {
            return;
        }

        var run = text.Substring(start, length);
        foreach (var token in _bpe.EncodeToTokens(run, out _))
        {
            var (offset, count) = token.Offset.GetOffsetAndLength(run.Length);
            ids.Add(token.Id);
            spans.Add(new TokenSpan(Math.Clamp(start + offset - shift, 0, limit), Math.Clamp(start + offset + count - shift, 0, limit)));
        }
    }
}
