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

    [LoggerMessage(EventId = 4101, Level = LogLevel.Information, Message = "Teacher cache {Directory}: {Producer} fills chunks [{First}, {End}) of {Total}, k = {K}")]
    internal static partial void CacheWriteStarted(ILogger logger, string directory, string producer, int first, int end, int total, int k);

    [LoggerMessage(EventId = 4102, Level = LogLevel.Information, Message = "Teacher cache chunk {Chunk} already complete; skipped")]
    internal static partial void CacheChunkSkipped(ILogger logger, int chunk);

    [LoggerMessage(EventId = 4103, Level = LogLevel.Information, Message = "Teacher cache chunk {Chunk} written ({Done}/{Total}): {Positions} positions, {ChunkRate:F0} positions/s (run {RunRate:F0} positions/s)")]
    internal static partial void CacheChunkWritten(ILogger logger, int chunk, int done, int total, long positions, double chunkRate, double runRate);

    [LoggerMessage(EventId = 4106, Level = LogLevel.Error, Message = "Teacher cache chunk {Chunk} could not be written while the producer also failed (the producer's error is raised)")]
    internal static partial void CacheChunkWriteFailed(ILogger logger, int chunk, Exception error);

    [LoggerMessage(EventId = 4104, Level = LogLevel.Information, Message = "Teacher cache {Directory} merged: {Chunks} chunks, {Rows} rows, {Positions} positions")]
    internal static partial void CacheMerged(ILogger logger, string directory, int chunks, long rows, long positions);

    [LoggerMessage(EventId = 4105, Level = LogLevel.Information, Message = "Teacher cache {Directory} opened: teacher {Teacher}, k = {K}, {Rows} rows in {Chunks} memory-mapped chunks")]
    internal static partial void CacheOpened(ILogger logger, string directory, string teacher, int k, long rows, int chunks);
    [LoggerMessage(EventId = 4201, Level = LogLevel.Information, Message = "SDFT: resuming {File} with {Rows} of {Total} rows already written")]
    internal static partial void SdftResumed(ILogger logger, string file, int rows, int total);

    [LoggerMessage(EventId = 4202, Level = LogLevel.Information, Message = "SDFT: wrote {File}: {Rows} rows, {Kept} rewrites kept")]
    internal static partial void SdftFinished(ILogger logger, string file, int rows, int kept);

    [LoggerMessage(EventId = 4301, Level = LogLevel.Information, Message = "SeqKD: resuming {File} with {Chunks} of {Total} chunks already written")]
    internal static partial void SeqKdResumed(ILogger logger, string file, int chunks, int total);

    [LoggerMessage(EventId = 4302, Level = LogLevel.Information, Message = "SeqKD chunk {Chunk}/{Total}: {Rows} rows, {Tokens} tokens, {ChunkRate:F1} tokens/s (run {RunRate:F1} tokens/s)")]
    internal static partial void SeqKdChunkWritten(ILogger logger, int chunk, int total, int rows, long tokens, double chunkRate, double runRate);

    [LoggerMessage(EventId = 4303, Level = LogLevel.Information, Message = "SeqKD: wrote {File}: {Rows} rows ({Statistics})")]
    internal static partial void SeqKdFinished(ILogger logger, string file, int rows, string statistics);
}
