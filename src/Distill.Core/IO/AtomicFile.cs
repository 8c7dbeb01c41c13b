namespace Distill.IO;

/// <summary>Atomic file writes: write a sibling temporary file, flush it to disk, then rename it over the target.</summary>
internal static class AtomicFile
{
    /// <summary>Writes <paramref name="path"/> atomically through <paramref name="write"/>.</summary>
    internal static void Write(string path, Action<FileStream> write)
    {
        var full = Path.GetFullPath(path);
        var dir = Path.GetDirectoryName(full) ?? ".";
        Directory.CreateDirectory(dir);
        var tmp = Path.Combine(dir, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20))
            {
                write(fs);
                fs.Flush(flushToDisk: true);
            }

            File.Move(tmp, full, overwrite: true);
        }
        finally
        {
            if (File.Exists(tmp))
            {
                File.Delete(tmp);
            }
        }
    }

    /// <summary>Writes UTF-8 text (no BOM) atomically.</summary>
    internal static void WriteText(string path, string text) =>
        Write(path, fs =>
        {
            var bytes = new System.Text.UTF8Encoding(false).GetBytes(text);
            fs.Write(bytes);
        });
}
