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

    /// <summary>Encodes <paramref name="segment"/>; spans are relative to the segment.</summary>
    void Encode(string segment, List<int> ids, List<TokenSpan> spans);

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

    public void Encode(string segment, List<int> ids, List<TokenSpan> spans)
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

    public void Encode(string segment, List<int> ids, List<TokenSpan> spans)
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
