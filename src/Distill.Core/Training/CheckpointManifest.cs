using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Serialization;
using Distill.IO;

namespace Distill.Training;

/// <summary>
/// <c>manifest.json</c> of a checkpoint folder: the byte length and SHA-256 of every other file, written after all of them
/// have been synced to disk and before the folder is renamed into place. A checkpoint whose files no longer match (torn by
/// a power loss, truncated, edited) is detected on resume instead of failing deep inside a loader.
/// </summary>
internal sealed record CheckpointManifest
{
    public const int CurrentFormat = 1;

    public int Format { get; init; } = CurrentFormat;

    /// <summary>The optimizer step the checkpoint holds.</summary>
    public int Step { get; init; }

    /// <summary>True when every floating-point weight was checked finite before the checkpoint was written.</summary>
    public bool WeightsFinite { get; init; }

    /// <summary>Every file of the folder except the manifest, by '/'-separated relative path, ordinal order.</summary>
    public IReadOnlyList<Entry> Files { get; init; } = [];

    /// <summary>Hashes and syncs every file under <paramref name="folder"/>, writes the manifest (synced too) and syncs the folders.</summary>
    public static CheckpointManifest Write(string folder, int step, bool weightsFinite)
    {
        var entries = new List<Entry>();
        foreach (var file in Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
        {
            var relative = Path.GetRelativePath(folder, file).Replace(Path.DirectorySeparatorChar, '/');
            if (relative == CheckpointLayout.ManifestFile)
            {
                continue;
            }

            using var fs = new FileStream(file, FileMode.Open, FileAccess.ReadWrite, FileShare.Read, 1 << 20);
            var hash = Convert.ToHexStringLower(SHA256.HashData(fs));
            fs.Flush(flushToDisk: true);
            entries.Add(new Entry(relative, fs.Length, hash));
        }

        var manifest = new CheckpointManifest { Step = step, WeightsFinite = weightsFinite, Files = entries };
        var path = Path.Combine(folder, CheckpointLayout.ManifestFile);
        using (var fs = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            JsonSerializer.Serialize(fs, manifest, TrainerState.Json);
            fs.Flush(flushToDisk: true);
        }

        foreach (var dir in Directory.EnumerateDirectories(folder, "*", SearchOption.AllDirectories).OrderByDescending(d => d.Length))
        {
            FileSync.Directory(dir);
        }

        FileSync.Directory(folder);
        return manifest;
    }

    /// <summary>Reads the manifest of a checkpoint folder; <see langword="null"/> for a folder written before manifests existed.</summary>
    /// <exception cref="InvalidDataException">The manifest is unreadable; the message names it.</exception>
    public static CheckpointManifest? Read(string folder)
    {
        var path = Path.Combine(folder, CheckpointLayout.ManifestFile);
        if (!File.Exists(path))
        {
            return null;
        }

        try
        {
            var manifest = JsonSerializer.Deserialize<CheckpointManifest>(File.ReadAllText(path), TrainerState.Json)
                ?? throw new InvalidDataException($"Checkpoint manifest '{path}' is empty.");
            if (manifest.Format != CurrentFormat)
            {
                throw new InvalidDataException($"Checkpoint manifest '{path}' has format {manifest.Format}; this version reads format {CurrentFormat}.");
            }

            return manifest;
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"Checkpoint manifest '{path}' is not valid JSON ({e.Message}).", e);
        }
    }

    /// <summary>
    /// Checks a checkpoint folder against its manifest. <paramref name="hashes"/> = false checks presence and byte lengths
    /// only (cheap, used by the keep policy); true also recomputes every SHA-256 (used before resuming).
    /// </summary>
    /// <returns><see langword="null"/> when intact, else why not (naming the file).</returns>
    public static string? Verify(string folder, bool hashes)
    {
        CheckpointManifest? manifest;
        try
        {
            manifest = Read(folder);
        }
        catch (InvalidDataException e)
        {
            return e.Message;
        }

        if (manifest is null)
        {
            return $"'{folder}' has no {CheckpointLayout.ManifestFile}";
        }

        foreach (var entry in manifest.Files)
        {
            if (entry.Path.Contains("..", StringComparison.Ordinal) || Path.IsPathRooted(entry.Path))
            {
                return $"{CheckpointLayout.ManifestFile} in '{folder}' lists '{entry.Path}', which is not inside the folder";
            }

            var file = Path.Combine(folder, entry.Path.Replace('/', Path.DirectorySeparatorChar));
            var info = new FileInfo(file);
            if (!info.Exists)
            {
                return $"'{file}' is missing";
            }

            if (info.Length != entry.Bytes)
            {
                return string.Create(CultureInfo.InvariantCulture, $"'{file}' is {info.Length} bytes, the manifest recorded {entry.Bytes} (torn or truncated write)");
            }

            if (hashes)
            {
                using var fs = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20);
                var hash = Convert.ToHexStringLower(SHA256.HashData(fs));
                if (!string.Equals(hash, entry.Sha256, StringComparison.Ordinal))
                {
                    return $"'{file}' has SHA-256 {hash}, the manifest recorded {entry.Sha256} (corrupt content)";
                }
            }
        }

        return null;
    }

    /// <summary>One file: relative path, byte length, lowercase hex SHA-256.</summary>
    public sealed record Entry(
        [property: JsonPropertyName("path")] string Path,
        [property: JsonPropertyName("bytes")] long Bytes,
        [property: JsonPropertyName("sha256")] string Sha256);
}
