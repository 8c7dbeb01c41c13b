using System.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace Distill.Training;

/// <summary>
/// A small file of named tensors in TorchSharp's tensor serialisation (used for checkpoint parts that have no HF format:
/// objective parameters, float32 master weights, RNG state). Layout: magic <c>DSTT</c>, version, count, then per entry the
/// name and the tensor.
/// </summary>
internal static class NamedTensorFile
{
    private const string Magic = "DSTT";
    private const int Version = 1;

    /// <summary>Writes <paramref name="tensors"/> (copied to CPU) to <paramref name="path"/>.</summary>
    public static void Write(string path, IEnumerable<KeyValuePair<string, Tensor>> tensors)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        var list = tensors.ToList();
        using var scope = NewDisposeScope();
        using var stream = File.Create(path);
        using var writer = new BinaryWriter(stream, Encoding.UTF8);
        writer.Write(Magic);
        writer.Write(Version);
        writer.Write(list.Count);
        foreach (var (name, tensor) in list)
        {
            writer.Write(name);
            tensor.detach().cpu().contiguous().Save(writer);
        }
    }

    /// <summary>Reads every tensor of <paramref name="path"/> (on CPU); the caller owns them.</summary>
    /// <exception cref="InvalidDataException">The file is not a named-tensor file, is truncated or corrupt; the message names the file.</exception>
    public static Dictionary<string, Tensor> Read(string path)
    {
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        try
        {
            ForEach(path, (name, tensor) => result[name] = tensor);
        }
        catch
        {
            foreach (var t in result.Values)
            {
                t.Dispose();
            }

            throw;
        }

        return result;
    }

    /// <summary>True when <paramref name="path"/> starts with the named-tensor magic.</summary>
    public static bool HasMagic(string path)
    {
        try
        {
            using var stream = File.OpenRead(path);
            using var reader = new BinaryReader(stream, Encoding.UTF8);
            return stream.Length > Magic.Length && reader.ReadByte() == Magic.Length && new string(reader.ReadChars(Magic.Length)) == Magic;
        }
        catch (Exception e) when (e is IOException or ArgumentException)
        {
            return false;
        }
    }

    /// <summary>
    /// Streams the tensors of <paramref name="path"/> one at a time (on CPU) to <paramref name="visit"/>, which owns each
    /// tensor; at most one tensor is in memory at a time unless the visitor keeps them.
    /// </summary>
    /// <exception cref="InvalidDataException">The file is not a named-tensor file, is truncated or corrupt; the message names the file.</exception>
    public static void ForEach(string path, Action<string, Tensor> visit)
    {
        ArgumentNullException.ThrowIfNull(visit);
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"Checkpoint file '{path}' does not exist.", path);
        }

        using var stream = File.OpenRead(path);
        using var reader = new BinaryReader(stream, Encoding.UTF8);
        var read = 0;
        try
        {
            var magic = reader.ReadString();
            var version = reader.ReadInt32();
            if (magic != Magic || version != Version)
            {
                throw new InvalidDataException($"'{path}' is not a Distill named-tensor file (magic '{Bounded(magic)}', version {version}; expected '{Magic}', {Version}).");
            }

            var count = reader.ReadInt32();
            if (count < 0)
            {
                throw new InvalidDataException($"'{path}' is corrupt: negative tensor count {count}.");
            }

            for (var i = 0; i < count; i++)
            {
                var name = reader.ReadString();
                var tensor = TensorExtensionMethods.Load(reader);
                read++;
                visit(name, tensor);
            }
        }
        catch (EndOfStreamException e)
        {
            throw new InvalidDataException($"'{path}' is truncated ({read} tensors read).", e);
        }
        catch (Exception e) when (e is not InvalidDataException and not OutOfMemoryException && IsFormatError(e))
        {
            throw new InvalidDataException($"'{path}' is corrupt after {read} tensors ({e.GetType().Name}: {Bounded(e.Message)}).", e);
        }
    }

    private static bool IsFormatError(Exception e) => e is IOException or ArgumentException or FormatException or OverflowException or NotImplementedException or System.Runtime.InteropServices.ExternalException or IndexOutOfRangeException;

    private static string Bounded(string s) => s.Length <= 200 ? s : s[..200] + "…";

    /// <summary>
    /// Copies the tensors of <paramref name="path"/> into <paramref name="targets"/> in place (same names, same shapes; dtype is
    /// converted). Every target must be present in the file.
    /// </summary>
    /// <exception cref="InvalidDataException">A name is missing or a shape differs; the message names the file, key and shapes.</exception>
    public static void LoadInto(string path, IReadOnlyDictionary<string, Tensor> targets)
    {
        ArgumentNullException.ThrowIfNull(targets);
        var loaded = Read(path);
        try
        {
            using var noGrad = no_grad();
            foreach (var (name, target) in targets)
            {
                if (!loaded.TryGetValue(name, out var source))
                {
                    throw new InvalidDataException($"'{path}' has no tensor '{name}' (it has {loaded.Count}: {string.Join(", ", loaded.Keys.Take(8))}{(loaded.Count > 8 ? ", ..." : string.Empty)}).");
                }

                if (!source.shape.SequenceEqual(target.shape))
                {
                    throw new InvalidDataException($"'{path}': tensor '{name}' has shape [{string.Join(", ", source.shape)}], expected [{string.Join(", ", target.shape)}].");
                }

                target.copy_(source);
            }
        }
        finally
        {
            foreach (var t in loaded.Values)
            {
                t.Dispose();
            }
        }
    }
}
