using System.Globalization;
using System.Text.Json;
using Microsoft.Extensions.Logging;

namespace Distill.Training;

/// <summary>
/// The <c>checkpoints/</c> folder of a run: atomic writes (everything goes to a temporary sibling folder that is renamed into
/// place at the end), the keep policy (last N plus best N by a metric) and lookup.
/// </summary>
/// <remarks>
/// A checkpoint folder <c>step-00000042/</c> holds <c>student/</c> (the <see cref="IModelCheckpointWriter"/>'s files),
/// <c>optimizer.bin</c> (TorchSharp optimizer state), <c>objective.bin</c>, <c>master_weights.bin</c> (bf16 runs), <c>rng.bin</c>,
/// <c>trainer_state.json</c> and <c>training_options.json</c>. A folder without <c>trainer_state.json</c> is not a checkpoint.
/// </remarks>
internal sealed class CheckpointStore(string root, ILogger logger)
{
    public const string StateFile = CheckpointLayout.TrainerStateFile;
    public const string OptionsFile = CheckpointLayout.TrainingOptionsFile;
    public const string StudentFolder = CheckpointLayout.StudentFolder;
    public const string OptimizerFile = CheckpointLayout.OptimizerFile;
    public const string ObjectiveFile = CheckpointLayout.ObjectiveFile;
    public const string MasterWeightsFile = CheckpointLayout.MasterWeightsFile;
    public const string RngFile = CheckpointLayout.RngFile;
    private const string Prefix = "step-";
    private const string TempPrefix = ".tmp-";

    public string Root { get; } = root;

    public static string FolderName(int step) => Prefix + step.ToString("D8", CultureInfo.InvariantCulture);

    /// <summary>Writes a checkpoint for <paramref name="step"/> atomically; <paramref name="writeParts"/> fills the temporary folder.</summary>
    /// <returns>The final folder.</returns>
    public string Save(int step, Action<string> writeParts)
    {
        Directory.CreateDirectory(Root);
        var final = Path.Combine(Root, FolderName(step));
        var temp = Path.Combine(Root, TempPrefix + FolderName(step) + "-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(temp);
        try
        {
            writeParts(temp);
            if (!File.Exists(Path.Combine(temp, StateFile)))
            {
                throw new InvalidOperationException($"Checkpoint writer left no {StateFile} in '{temp}'.");
            }

            if (Directory.Exists(final))
            {
                // Same step saved twice (e.g. an epoch end that is also a save step): replace, still without a moment where
                // 'final' is half-written.
                var old = Path.Combine(Root, TempPrefix + "old-" + Guid.NewGuid().ToString("N"));
                Directory.Move(final, old);
                Directory.Move(temp, final);
                Directory.Delete(old, recursive: true);
            }
            else
            {
                Directory.Move(temp, final);
            }
        }
        catch
        {
            TryDelete(temp);
            throw;
        }

        Log.CheckpointWritten(logger, final);
        return final;
    }

    /// <summary>Lists complete checkpoints, oldest step first.</summary>
    public List<(int Step, string Path, TrainerState State)> List()
    {
        var result = new List<(int, string, TrainerState)>();
        if (!Directory.Exists(Root))
        {
            return result;
        }

        foreach (var dir in Directory.EnumerateDirectories(Root, Prefix + "*"))
        {
            var stateFile = Path.Combine(dir, StateFile);
            if (!int.TryParse(Path.GetFileName(dir).AsSpan(Prefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out var step) || !File.Exists(stateFile))
            {
                continue;
            }

            result.Add((step, dir, ReadState(dir)));
        }

        result.Sort((a, b) => a.Item1.CompareTo(b.Item1));
        return result;
    }

    /// <summary>Deletes leftovers of interrupted writes (temporary folders).</summary>
    public void CleanTemporaryFolders()
    {
        if (!Directory.Exists(Root))
        {
            return;
        }

        foreach (var dir in Directory.EnumerateDirectories(Root, TempPrefix + "*"))
        {
            TryDelete(dir);
        }
    }

    /// <summary>Keeps the <paramref name="keepLast"/> newest checkpoints and the <paramref name="keepBest"/> best by their recorded metric; deletes the rest.</summary>
    /// <returns>The best checkpoint kept (path and value), if any has a metric.</returns>
    public (string Path, double Value)? Prune(int keepLast, int keepBest, bool greaterIsBetter)
    {
        var all = List();
        var keep = new HashSet<string>(all.TakeLast(keepLast).Select(c => c.Path), StringComparer.Ordinal);
        var ranked = all.Where(c => c.State.BestMetricValue is double v && !double.IsNaN(v))
            .OrderBy(c => greaterIsBetter ? -c.State.BestMetricValue!.Value : c.State.BestMetricValue!.Value)
            .ThenBy(c => c.Step)
            .ToList();
        foreach (var c in ranked.Take(keepBest))
        {
            keep.Add(c.Path);
        }

        foreach (var c in all.Where(c => !keep.Contains(c.Path)))
        {
            TryDelete(c.Path);
            Log.CheckpointRemoved(logger, c.Path);
        }

        return ranked.Count > 0 && keepBest > 0 ? (ranked[0].Path, ranked[0].State.BestMetricValue!.Value) : null;
    }

    /// <summary>Resolves <c>latest</c> (the newest checkpoint under <see cref="Root"/>) or a checkpoint folder path.</summary>
    /// <exception cref="DirectoryNotFoundException">Nothing to resume from; the message names the folder.</exception>
    public string Resolve(string resumeFrom)
    {
        if (string.Equals(resumeFrom, "latest", StringComparison.OrdinalIgnoreCase))
        {
            var all = List();
            return all.Count > 0 ? all[^1].Path : throw new DirectoryNotFoundException($"No checkpoint to resume from in '{Root}'.");
        }

        return File.Exists(Path.Combine(resumeFrom, StateFile))
            ? resumeFrom
            : throw new DirectoryNotFoundException($"'{resumeFrom}' is not a checkpoint folder (it has no {StateFile}).");
    }

    public static TrainerState ReadState(string checkpoint)
    {
        var file = Path.Combine(checkpoint, StateFile);
        try
        {
            return JsonSerializer.Deserialize<TrainerState>(File.ReadAllText(file), TrainerState.Json)
                ?? throw new InvalidDataException($"'{file}' is empty.");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"'{file}' is not a valid trainer state: {e.Message}", e);
        }
    }

    public static void WriteJson<T>(string file, T value) => File.WriteAllText(file, JsonSerializer.Serialize(value, TrainerState.Json));

    private static void TryDelete(string dir)
    {
        try
        {
            Directory.Delete(dir, recursive: true);
        }
        catch (IOException)
        {
            // Best effort: a leftover folder is skipped by List() and removed by the next CleanTemporaryFolders().
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}
