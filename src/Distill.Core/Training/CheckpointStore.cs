using System.Globalization;
using System.Text.Json;
using Distill.IO;
using Microsoft.Extensions.Logging;
using TorchSharp;

namespace Distill.Training;

/// <summary>
/// The <c>checkpoints/</c> folder of a run: atomic writes (everything goes to a temporary sibling folder that is renamed into
/// place at the end), the keep policy (last N plus best N by a metric) and lookup.
/// </summary>
/// <remarks>
/// A checkpoint folder <c>step-00000042/</c> holds <c>student/</c> (the <see cref="IModelCheckpointWriter"/>'s files),
/// <c>optimizer.bin</c> (TorchSharp optimizer state), <c>objective.bin</c>, <c>master_weights.bin</c> (bf16 runs), <c>rng.bin</c>,
/// <c>trainer_state.json</c>, <c>training_options.json</c> and <c>manifest.json</c>. A folder without <c>trainer_state.json</c> is
/// not a checkpoint.
/// <para>Power-loss durability: before the rename, every floating-point weight is checked finite (a diverged run raises
/// <see cref="NonFiniteCheckpointException"/> instead of writing NaN weights), every file is synced to disk, hashed into
/// <c>manifest.json</c> (synced too) and the folders are synced; after the rename the parent folder is synced. Resuming from
/// <c>latest</c> verifies the manifest and falls back to the newest intact checkpoint with a warning naming the damaged one;
/// the keep policy never deletes the newest intact, finite checkpoint.</para>
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

    /// <summary>
    /// Writes a checkpoint for <paramref name="step"/> atomically and durably; <paramref name="writeParts"/> fills the temporary
    /// folder. The weights are checked finite, every file is synced and hashed into <c>manifest.json</c>, then the folder is
    /// renamed into place and its parent synced.
    /// </summary>
    /// <returns>The final folder.</returns>
    /// <exception cref="NonFiniteCheckpointException">A weight holds NaN or infinity; nothing is written (the message names the tensor and step).</exception>
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

            EnsureFinite(temp, step);
            CheckpointManifest.Write(temp, step, weightsFinite: true);

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

            FileSync.Directory(Root);
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

            TrainerState state;
            try
            {
                state = ReadState(dir);
            }
            catch (InvalidDataException e)
            {
                CheckpointLog.CheckpointDamaged(logger, dir, e.Message);
                continue;
            }

            result.Add((step, dir, state));
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

        // Whatever the policy, the newest checkpoint that is intact and whose weights were checked finite survives: it is
        // what a resume falls back to.
        var lastGood = all.LastOrDefault(c => CheckpointManifest.Verify(c.Path, hashes: false) is null && CheckpointManifest.Read(c.Path)?.WeightsFinite == true);
        if (lastGood.Path is not null)
        {
            keep.Add(lastGood.Path);
        }
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

    /// <summary>
    /// Resolves <c>latest</c> (the newest intact checkpoint under <see cref="Root"/>) or a checkpoint folder path. Each candidate
    /// is verified against its <c>manifest.json</c> (lengths and SHA-256); for <c>latest</c> a damaged checkpoint is skipped with
    /// a warning naming it and the next older one is tried. Folders written before manifests existed are accepted when their
    /// trainer state reads.
    /// </summary>
    /// <exception cref="DirectoryNotFoundException">Nothing to resume from; the message names the folder.</exception>
    /// <exception cref="InvalidDataException">An explicitly named checkpoint is damaged, or every checkpoint is; the message names the damage.</exception>
    public string Resolve(string resumeFrom)
    {
        if (string.Equals(resumeFrom, "latest", StringComparison.OrdinalIgnoreCase))
        {
            var all = List();
            if (all.Count == 0)
            {
                throw new DirectoryNotFoundException($"No checkpoint to resume from in '{Root}'.");
            }

            var damaged = new List<string>();
            for (var i = all.Count - 1; i >= 0; i--)
            {
                var problem = Inspect(all[i].Path);
                if (problem is null)
                {
                    if (damaged.Count > 0)
                    {
                        CheckpointLog.FellBack(logger, all[i].Path, damaged.Count);
                    }

                    return all[i].Path;
                }

                damaged.Add(problem);
                CheckpointLog.CheckpointDamaged(logger, all[i].Path, problem);
            }

            throw new InvalidDataException($"Every checkpoint in '{Root}' is damaged: {string.Join("; ", damaged)}.");
        }

        if (!File.Exists(Path.Combine(resumeFrom, StateFile)))
        {
            throw new DirectoryNotFoundException($"'{resumeFrom}' is not a checkpoint folder (it has no {StateFile}).");
        }

        return Inspect(resumeFrom) is { } reason
            ? throw new InvalidDataException($"Checkpoint '{resumeFrom}' is damaged: {reason}.")
            : resumeFrom;
    }

    /// <summary>Verifies a checkpoint folder before resuming from it.</summary>
    /// <returns><see langword="null"/> when intact; else what is wrong, naming the file.</returns>
    public static string? Inspect(string checkpoint)
    {
        if (File.Exists(Path.Combine(checkpoint, CheckpointLayout.ManifestFile)))
        {
            if (CheckpointManifest.Verify(checkpoint, hashes: true) is { } problem)
            {
                return problem;
            }
        }

        try
        {
            _ = ReadState(checkpoint);
            return null;
        }
        catch (InvalidDataException e)
        {
            return e.Message;
        }
    }

    /// <summary>
    /// Throws <see cref="NonFiniteCheckpointException"/> when a floating-point tensor of a weight file under <paramref name="folder"/>
    /// (safetensors files and Distill named-tensor files other than the RNG state) holds NaN or infinity.
    /// </summary>
    /// <param name="folder">A checkpoint folder (or its temporary twin).</param>
    /// <param name="step">The step, for the message.</param>
    public static void EnsureFinite(string folder, int step)
    {
        foreach (var file in Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
        {
            var relative = Path.GetRelativePath(folder, file).Replace(Path.DirectorySeparatorChar, '/');
            if (file.EndsWith(".safetensors", StringComparison.Ordinal))
            {
                using var st = SafeTensorsFile.Open(file);
                foreach (var info in st.Tensors.Values.Where(i => SafeTensorsFile.IsFloat(i.ScalarType)))
                {
                    using var scope = torch.NewDisposeScope();
                    CheckFinite(st.Read(info.Name), info.Name, relative, step);
                }
            }
            else if (relative != RngFile && file.EndsWith(".bin", StringComparison.Ordinal) && NamedTensorFile.HasMagic(file))
            {
                NamedTensorFile.ForEach(file, (name, tensor) =>
                {
                    using (tensor)
                    {
                        CheckFinite(tensor, name, relative, step);
                    }
                });
            }
        }
    }

    private static void CheckFinite(torch.Tensor t, string name, string relative, int step)
    {
        if (!t.is_floating_point() || t.NumberOfElements == 0)
        {
            return;
        }

        using var finite = t.isfinite();
        using var all = finite.all();
        if (!all.item<bool>())
        {
            using var bad = finite.logical_not().sum();
            throw new NonFiniteCheckpointException(step, relative, name, bad.item<long>(), t.NumberOfElements);
        }
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
