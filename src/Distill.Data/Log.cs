using Microsoft.Extensions.Logging;

namespace Distill.Data;

/// <summary>Source-generated log messages of Distill.Data (event IDs 4xxx).</summary>
internal static partial class Log
{
    [LoggerMessage(EventId = 4001, Level = LogLevel.Information, Message = "Tokenizer loaded from {Source}: {Kind}, {VocabSize} ids, bos={Bos} eos={Eos} pad={Pad} unk={Unk}")]
    internal static partial void TokenizerLoaded(ILogger logger, string source, string kind, int vocabSize, int? bos, int? eos, int? pad, int? unk);

    [LoggerMessage(EventId = 4002, Level = LogLevel.Warning, Message = "{File}: vocab_size {ModelVocab} exceeds the tokenizer's {TokenizerVocab} ids; the extra embedding rows are never produced by the tokenizer")]
    internal static partial void ModelVocabLarger(ILogger logger, string file, int modelVocab, int tokenizerVocab);

    [LoggerMessage(EventId = 4004, Level = LogLevel.Warning, Message = "{File}: replaced {Count} invalid UTF-8 sequence(s) with U+FFFD on {Lines} line(s), first at line {FirstLine}")]
    internal static partial void InvalidUtf8Replaced(ILogger logger, string file, int count, int lines, int firstLine);

    [LoggerMessage(EventId = 4003, Level = LogLevel.Information, Message = "Tokenized {Examples} examples ({Skipped} skipped: no response tokens left after truncation)")]
    internal static partial void DatasetTokenized(ILogger logger, int examples, int skipped);
}
