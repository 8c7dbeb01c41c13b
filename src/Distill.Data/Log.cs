using Microsoft.Extensions.Logging;

namespace Distill.Data;

/// <summary>Source-generated log messages of Distill.Data (event IDs 4xxx).</summary>
internal static partial class Log
{
    [LoggerMessage(EventId = 4001, Level = LogLevel.Information, Message = "Tokenizer loaded from {Source}: {Kind}, {VocabSize} ids, bos={Bos} eos={Eos} pad={Pad} unk={Unk}")]
    internal static partial void TokenizerLoaded(ILogger logger, string source, string kind, int vocabSize, int? bos, int? eos, int? pad, int? unk);

    [LoggerMessage(EventId = 4002, Level = LogLevel.Warning, Message = "{File}: vocab_size {ModelVocab} exceeds the tokenizer's {TokenizerVocab} ids; the extra embedding rows are never produced by the tokenizer")]
    internal static partial void ModelVocabLarger(ILogger logger, string file, int modelVocab, int tokenizerVocab);

    [LoggerMessage(EventId = 4003, Level = LogLevel.Information, Message = "Tokenized {Examples} examples ({Skipped} skipped: no response tokens left after truncation)")]
    internal static partial void DatasetTokenized(ILogger logger, int examples, int skipped);

    [LoggerMessage(EventId = 4101, Level = LogLevel.Information, Message = "Teacher cache {Directory}: {Producer} fills chunks [{First}, {End}) of {Total}, k = {K}")]
    internal static partial void CacheWriteStarted(ILogger logger, string directory, string producer, int first, int end, int total, int k);

    [LoggerMessage(EventId = 4102, Level = LogLevel.Information, Message = "Teacher cache chunk {Chunk} already complete; skipped")]
    internal static partial void CacheChunkSkipped(ILogger logger, int chunk);

    [LoggerMessage(EventId = 4103, Level = LogLevel.Information, Message = "Teacher cache chunk {Chunk} written ({Done}/{Total}): {Positions} positions, {ChunkRate:F0} positions/s (run {RunRate:F0} positions/s)")]
    internal static partial void CacheChunkWritten(ILogger logger, int chunk, int done, int total, long positions, double chunkRate, double runRate);

    [LoggerMessage(EventId = 4104, Level = LogLevel.Information, Message = "Teacher cache {Directory} merged: {Chunks} chunks, {Rows} rows, {Positions} positions")]
    internal static partial void CacheMerged(ILogger logger, string directory, int chunks, long rows, long positions);

    [LoggerMessage(EventId = 4105, Level = LogLevel.Information, Message = "Teacher cache {Directory} opened: teacher {Teacher}, k = {K}, {Rows} rows in {Chunks} memory-mapped chunks")]
    internal static partial void CacheOpened(ILogger logger, string directory, string teacher, int k, long rows, int chunks);
}
