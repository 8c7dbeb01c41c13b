using Distill.Training;

namespace Distill.Core.Tests.Training;

public sealed class EtaFormatTests
{
    [Theory]
    [InlineData(17.6561223, "00:00:17")] // TimeSpan's default printed 00:00:17.6561223 in the step log
    [InlineData(3725.0, "01:02:05")] // 1 h 2 min 5 s
    [InlineData(90061.0, "1.01:01:01")] // 1 day + 1 h 1 min 1 s
    public void FormatEta_PrintsWholeSecondsWithoutTicks(double seconds, string expected) =>
        Assert.Equal(expected, DistillationTrainer.FormatEta(TimeSpan.FromSeconds(seconds)));
}
