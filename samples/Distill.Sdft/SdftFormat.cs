using System.Globalization;

namespace Distill.Sdft;

/// <summary>Formatting of the result table.</summary>
public static class SdftFormat
{
    /// <summary>Mean ± sample standard deviation (n − 1; 0 for one value), one decimal.</summary>
    /// <param name="values">The per-seed values.</param>
    /// <returns>E.g. <c>"41.7 ± 2.9"</c>.</returns>
    public static string MeanStd(IReadOnlyList<double> values)
    {
        ArgumentNullException.ThrowIfNull(values);
        var (mean, std) = Stats(values);
        return string.Create(CultureInfo.InvariantCulture, $"{mean:F1} ± {std:F1}");
    }

    /// <summary>Mean and sample standard deviation.</summary>
    /// <param name="values">The values.</param>
    /// <returns>Mean and standard deviation.</returns>
    public static (double Mean, double Std) Stats(IReadOnlyList<double> values)
    {
        ArgumentNullException.ThrowIfNull(values);
        if (values.Count == 0)
        {
            return (double.NaN, double.NaN);
        }

        var mean = values.Average();
        var std = values.Count > 1 ? Math.Sqrt(values.Sum(v => (v - mean) * (v - mean)) / (values.Count - 1)) : 0;
        return (mean, std);
    }
}
