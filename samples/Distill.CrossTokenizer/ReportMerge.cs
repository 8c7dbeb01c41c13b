using System.Text.Json;

namespace Distill.CrossTokenizer;

/// <summary>
/// Combines the results.json of runs that split one comparison by seeds (e.g. <c>--seeds 1</c>, <c>--seeds 2</c>,
/// <c>--seeds 3</c> run as separate processes on a busy machine) into one report: per method, the per-seed values are
/// concatenated in part order and the statistics recomputed. Every part must have the same settings apart from the seeds.
/// </summary>
public static class ReportMerge
{
    private static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = JsonNamingPolicy.CamelCase };

    /// <summary>Reads a run folder's results.json.</summary>
    /// <param name="directory">The run folder.</param>
    /// <returns>The report.</returns>
    public static CrossTokenizerReport Read(string directory)
    {
        var path = Path.Combine(directory, CrossTokenizerReport.JsonFile);
        if (!File.Exists(path))
        {
            throw new ArgumentException($"No {CrossTokenizerReport.JsonFile} in {directory}.");
        }

        try
        {
            return JsonSerializer.Deserialize<CrossTokenizerReport>(File.ReadAllText(path), Json) ?? throw new InvalidDataException($"{path} is null.");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: {e.Message}", e);
        }
    }

    /// <summary>Merges the parts.</summary>
    /// <param name="parts">Reports of the same comparison, each with its own seeds.</param>
    /// <returns>One report over all seeds; its time is the sum of the parts' (the time of running them one after another).</returns>
    public static CrossTokenizerReport Merge(IReadOnlyList<CrossTokenizerReport> parts)
    {
        ArgumentNullException.ThrowIfNull(parts);
        if (parts.Count == 0)
        {
            throw new ArgumentException("Nothing to merge.");
        }

        var first = parts[0];
        var seeds = parts.SelectMany(p => p.Settings.Seeds).ToList();
        if (seeds.Distinct().Count() != seeds.Count)
        {
            throw new ArgumentException($"The parts repeat a seed ({string.Join(", ", seeds)}).");
        }

        foreach (var p in parts)
        {
            if (SettingsKey(p.Settings) != SettingsKey(first.Settings)
                || !p.Rows.Select(r => r.Method).SequenceEqual(first.Rows.Select(r => r.Method)) || p.Teacher != first.Teacher)
            {
                throw new ArgumentException("The parts differ in settings other than the seeds (or in their rows or teacher).");
            }
        }

        var rows = first.Rows.Select((row, i) =>
        {
            var same = parts.Select(p => p.Rows[i]).ToList();
            var weights = same.Select(r => (double)r.ExactMatch.PerSeed.Count).ToList();
            var byTask = row.ExactMatchByTask.Keys.ToDictionary(t => t, t => same.Select((r, k) => r.ExactMatchByTask[t] * weights[k]).Sum() / weights.Sum());
            return row.Method == CrossTokenizerPipeline.TeacherRow
                ? row   // the teacher does not depend on the student seed
                : MethodRow.From(row.Method, [.. same.SelectMany(r => r.ExactMatch.PerSeed)], [.. same.SelectMany(r => r.RougeL.PerSeed)], [.. same.SelectMany(r => r.TrainSeconds.PerSeed)])
                    with { ExactMatchByTask = byTask };
        }).ToList();
        var phases = first.PhaseSeconds.Keys.ToDictionary(k => k, k => parts.Sum(p => p.PhaseSeconds.GetValueOrDefault(k)));
        return first with
        {
            Rows = rows,
            Settings = first.Settings with { Seeds = seeds },
            PhaseSeconds = phases,
            TotalSeconds = parts.Sum(p => p.TotalSeconds),
            FinishedUtc = parts.Max(p => p.FinishedUtc),
        };
    }

    private static string SettingsKey(CrossTokenizerSettings s) => JsonSerializer.Serialize(s with { Seeds = [], OutputDirectory = string.Empty }, Json);
}
