using Microsoft.Extensions.Logging;

namespace Distill.Eval;

/// <summary>Source-generated log messages of Distill.Eval (event IDs 5xxx).</summary>
internal static partial class Log
{
    [LoggerMessage(EventId = 5001, Level = LogLevel.Information, Message = "Evaluating {Examples} examples with seeds [{Seeds}] and metrics [{Metrics}]")]
    internal static partial void EvaluationStarted(ILogger logger, int examples, string seeds, string metrics);

    [LoggerMessage(EventId = 5002, Level = LogLevel.Debug, Message = "Seed {Seed}: generated examples {Start}..{End}")]
    internal static partial void BatchGenerated(ILogger logger, int seed, int start, int end);

    [LoggerMessage(EventId = 5003, Level = LogLevel.Information, Message = "Seed {Seed}: {Scores}")]
    internal static partial void SeedFinished(ILogger logger, int seed, string scores);

    [LoggerMessage(EventId = 5004, Level = LogLevel.Information, Message = "Evaluation over {SeedCount} seeds: {Summary}")]
    internal static partial void EvaluationFinished(ILogger logger, int seedCount, string summary);
}
