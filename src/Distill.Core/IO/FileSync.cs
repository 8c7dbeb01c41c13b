using System.Runtime.InteropServices;

namespace Distill.IO;

/// <summary>
/// Forces written data to stable storage (<c>fsync</c>). A rename is only durable across a power loss once the renamed
/// file's data and the folder that holds the new name have both been synced; <see cref="AtomicFile"/> and the trainer's
/// checkpoint store go through here.
/// </summary>
internal static partial class FileSync
{
    /// <summary>Syncs a file's data and metadata to disk.</summary>
    /// <param name="path">The file.</param>
    public static void File(string path)
    {
        using var fs = new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite, 1, FileOptions.None);
        fs.Flush(flushToDisk: true);
    }

    /// <summary>Syncs a folder's entries (new, renamed or removed names) to disk. A no-op on Windows, where NTFS journals them.</summary>
    /// <param name="path">The folder.</param>
    /// <exception cref="IOException">The folder cannot be opened or synced; the message names it.</exception>
    public static void Directory(string path)
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }

        var fd = Open(path, 0 /* O_RDONLY */);
        if (fd < 0)
        {
            throw new IOException($"Cannot open folder '{path}' to sync it (errno {Marshal.GetLastPInvokeError()}).");
        }

        try
        {
            if (Fsync(fd) != 0)
            {
                var errno = Marshal.GetLastPInvokeError();

                // EINVAL: the file system does not support syncing folders (some FUSE/network mounts); nothing more can be done.
                if (errno != 22)
                {
                    throw new IOException($"fsync of folder '{path}' failed (errno {errno}).");
                }
            }
        }
        finally
        {
            _ = Close(fd);
        }
    }

    /// <summary>Syncs every file under <paramref name="root"/>, then every folder bottom-up, then <paramref name="root"/> itself.</summary>
    /// <param name="root">The folder.</param>
    public static void Tree(string root)
    {
        foreach (var file in System.IO.Directory.EnumerateFiles(root, "*", SearchOption.AllDirectories))
        {
            File(file);
        }

        foreach (var dir in System.IO.Directory.EnumerateDirectories(root, "*", SearchOption.AllDirectories).OrderByDescending(d => d.Length))
        {
            Directory(dir);
        }

        Directory(root);
    }

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static partial int Fsync(int fd);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int Close(int fd);
}
