using Distill.Training;

namespace Distill.Core.Tests.Training;

public class LearningRateScheduleTests
{
    [Fact]
    public void LearningRate_CosineNoWarmup_MatchesCosineAnnealingClosedForm()
    {
        // PyTorch CosineAnnealingLR(T_max=10, eta_min=1e-7), base 1e-3: lr_t = eta_min + (base − eta_min)(1 + cos(π t / 10)) / 2.
        var s = new LearningRateSchedule(LearningRateScheduleKind.Cosine, 10, 0, 1e-7);
        Assert.Equal(1e-3, s.LearningRate(1e-3, 0), 15);
        Assert.Equal(1e-7 + ((1e-3 - 1e-7) * 0.5), s.LearningRate(1e-3, 5), 15); // cos(π/2) = 0
        Assert.Equal(1e-7 + ((1e-3 - 1e-7) * (1 + Math.Cos(Math.PI * 0.3)) / 2), s.LearningRate(1e-3, 3), 15);
        Assert.Equal(1e-7, s.LearningRate(1e-3, 10), 15);
        Assert.Equal(1e-7, s.LearningRate(1e-3, 12), 15); // past the end: stays at the floor
    }

    [Fact]
    public void LearningRate_WarmupRatio_RampsLinearlyFromZeroLikeHf()
    {
        // T = 20, ratio 0.12 → W = ceil(2.4) = 3 warmup steps: 0, 1/3, 2/3 of base, then decay starts at base.
        var s = new LearningRateSchedule(LearningRateScheduleKind.Linear, 20, 0.12, 0);
        Assert.Equal(3, s.WarmupSteps);
        Assert.Equal(0.0, s.LearningRate(0.3, 0), 15);
        Assert.Equal(0.1, s.LearningRate(0.3, 1), 15);
        Assert.Equal(0.2, s.LearningRate(0.3, 2), 15);
        Assert.Equal(0.3, s.LearningRate(0.3, 3), 15);
        // linear after warmup: base · (T − s) / (T − W) = 0.3 · 10 / 17 at s = 10
        Assert.Equal(0.3 * 10 / 17, s.LearningRate(0.3, 10), 15);
        Assert.Equal(0.0, s.LearningRate(0.3, 20), 15);
    }

    [Fact]
    public void LearningRate_Constant_StaysAtBaseAfterWarmup()
    {
        var s = new LearningRateSchedule(LearningRateScheduleKind.Constant, 10, 0.2, 0.5);
        Assert.Equal(0.5, s.LearningRate(1.0, 1), 15); // warmup: 1 · 1/2
        Assert.Equal(1.0, s.LearningRate(1.0, 2), 15);
        Assert.Equal(1.0, s.LearningRate(1.0, 9), 15);
    }

    [Fact]
    public void LearningRate_LinearWithMin_EndsAtMin()
    {
        var s = new LearningRateSchedule(LearningRateScheduleKind.Linear, 4, 0, 0.1);
        Assert.Equal(1.0, s.LearningRate(1.0, 0), 15);
        Assert.Equal(0.1 + (0.9 * 0.5), s.LearningRate(1.0, 2), 15);
        Assert.Equal(0.1, s.LearningRate(1.0, 4), 15);
    }

    [Fact]
    public void Constructor_BadArguments_Throws()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new LearningRateSchedule(LearningRateScheduleKind.Cosine, 0, 0, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new LearningRateSchedule(LearningRateScheduleKind.Cosine, 5, 1.0, 0));
    }
}
