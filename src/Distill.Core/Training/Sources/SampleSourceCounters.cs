using Microsoft.Extensions.Logging;

namespace Distill.Training.Sources;

/// <summary>The mutable counters behind <see cref="SampleSourceStatistics"/>, and their periodic log line.</summary>
internal sealed class SampleSourceCounters(string name, int logEveryBatches, ILogger logger)
{
    private readonly object gate = new();
    private long batches;
    private long generatedBatches;
    private long generatedRows;
    private long truncatedRows;
    private long emptyResponses;
    private long droppedRows;
    private long skippedPrompts;
    private long generatedTokens;
    private long generationTicks;

    public SampleSourceStatistics Snapshot()
    {
        lock (gate)
        {
            return new SampleSourceStatistics(
                batches, generatedBatches, generatedRows, truncatedRows, emptyResponses, droppedRows, skippedPrompts, generatedTokens, TimeSpan.FromTicks(generationTicks));
        }
    }

    public void CountBatch()
    {
        lock (gate)
        {
            batches++;
        }
    }

    public void CountGeneration(in ResponseCounts counts, TimeSpan elapsed)
    {
        long done;
        lock (gate)
        {
            generatedBatches++;
            generatedRows += counts.Rows;
            truncatedRows += counts.Truncated;
            emptyResponses += counts.Empty;
            droppedRows += counts.Dropped;
            skippedPrompts += counts.Skipped;
            generatedTokens += counts.Tokens;
            generationTicks += elapsed.Ticks;
            done = generatedBatches;
        }

        if (logEveryBatches > 0 && done % logEveryBatches == 0 && logger.IsEnabled(LogLevel.Information))
        {
            var s = Snapshot();
            Log.SampleSourceProgress(logger, name, s.Batches, s.GeneratedBatches, s.GeneratedRows, s.MeanGeneratedLength, s.TruncatedRows, s.EmptyResponses, s.DroppedRows, s.SkippedPrompts, s.GenerationTime.TotalSeconds);
        }
    }
}

/// <summary>Per-batch counts of a generation.</summary>
internal readonly record struct ResponseCounts(long Rows, long Truncated, long Empty, long Dropped, long Skipped, long Tokens);
