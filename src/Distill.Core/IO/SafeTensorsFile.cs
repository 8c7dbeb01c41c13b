using System.IO.MemoryMappedFiles;
using System.Text.Json;
using TorchSharp;
using static TorchSharp.torch;

namespace Distill.IO;

/// <summary>
/// An open safetensors file: the validated header and lazy, memory-mapped reading of single tensors. A tensor's bytes
/// are copied once, from the mapped file straight into the native tensor storage (never through managed arrays).
/// </summary>
/// <remarks>
/// The header is validated when the file is opened, as the safetensors format requires: the path is followed through
/// symbolic links to a regular file (special files are rejected before reading), header length bounded by
/// <see cref="SafeTensors.MaxHeaderBytes"/> and the file size, valid UTF-8 JSON with no repeated key, a JSON object of entries
/// with a known dtype, a non-negative shape and two data offsets, byte sizes equal to element count × dtype size, and the
/// offsets, in order, contiguous from 0 and covering the data section exactly (so a header length that is off by a few
/// bytes cannot shift the weights). Any violation throws <see cref="InvalidDataException"/> naming the file and the tensor,
/// with untrusted text shortened. Not thread-safe; dispose to unmap the file.
/// </remarks>
public sealed unsafe class SafeTensorsFile : IDisposable
{
    private readonly MemoryMappedFile map;
    private readonly MemoryMappedViewAccessor view;
    private readonly byte* basePointer;
    private readonly long dataStart;
    private readonly Dictionary<string, SafeTensorInfo> tensors;
    private bool disposed;

    private SafeTensorsFile(string path, MemoryMappedFile map, MemoryMappedViewAccessor view, byte* basePointer, long dataStart, Dictionary<string, SafeTensorInfo> tensors, Dictionary<string, string> metadata)
    {
        Path = path;
        this.map = map;
        this.view = view;
        this.basePointer = basePointer;
        this.dataStart = dataStart;
        this.tensors = tensors;
        Metadata = metadata;
    }

    /// <summary>Gets the path of the file.</summary>
    public string Path { get; }

    /// <summary>Gets the tensor entries by name.</summary>
    public IReadOnlyDictionary<string, SafeTensorInfo> Tensors => tensors;

    /// <summary>Gets the <c>__metadata__</c> string map (empty when the file has none).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>Opens and validates a safetensors file.</summary>
    /// <param name="path">The file.</param>
    /// <returns>The open file.</returns>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The header is corrupt or inconsistent with the file.</exception>
    public static SafeTensorsFile Open(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"safetensors file '{path}' does not exist.", path);
        }

        // Follows hub-cache symlinks to the blob; rejects FIFOs and devices before anything is mapped or read.
        var fileLength = InputFile.RequireRegularFile(path);
        if (fileLength < 8)
        {
            throw new InvalidDataException($"safetensors file '{path}' is {fileLength} bytes long: too short for the 8-byte header length.");
        }

        var map = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
        MemoryMappedViewAccessor? view = null;
        var acquired = false;
        try
        {
            view = map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
            byte* p = null;
            view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
            acquired = true;
            p += view.PointerOffset;

            var headerLength = BitConverter.ToUInt64(new ReadOnlySpan<byte>(p, 8));
            if (!BitConverter.IsLittleEndian)
            {
                headerLength = System.Buffers.Binary.BinaryPrimitives.ReverseEndianness(headerLength);
            }

            if (headerLength > (ulong)SafeTensors.MaxHeaderBytes)
            {
                throw new InvalidDataException($"safetensors file '{path}': header length {headerLength} exceeds the limit of {SafeTensors.MaxHeaderBytes} bytes.");
            }

            if (headerLength > (ulong)(fileLength - 8))
            {
                throw new InvalidDataException($"safetensors file '{path}': header length {headerLength} exceeds the {fileLength - 8} bytes after the length prefix (truncated or corrupt file).");
            }

            var dataStart = 8 + (long)headerLength;
            var header = new ReadOnlySpan<byte>(p + 8, (int)headerLength);
            var (entries, metadata) = ParseHeader(path, header, fileLength - dataStart);
            var result = new SafeTensorsFile(path, map, view, p, dataStart, entries, metadata);
            acquired = false;
            return result;
        }
        catch
        {
            if (acquired)
            {
                view!.SafeMemoryMappedViewHandle.ReleasePointer();
            }

            view?.Dispose();
            map.Dispose();
            throw;
        }
    }

    /// <summary>Reads one tensor.</summary>
    /// <param name="name">The tensor name.</param>
    /// <param name="device">Target device; <see langword="null"/> = CPU.</param>
    /// <param name="dtype">Target dtype; <see langword="null"/> = the stored dtype.</param>
    /// <returns>A new tensor with the stored shape (owned by the caller's dispose scope, if any).</returns>
    /// <exception cref="KeyNotFoundException">No tensor named <paramref name="name"/>.</exception>
    public Tensor Read(string name, Device? device = null, ScalarType? dtype = null)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        if (!tensors.TryGetValue(name, out var info))
        {
            throw new KeyNotFoundException($"safetensors file '{Path}' has no tensor '{name}'.");
        }

        using var scope = torch.NewDisposeScope();
        var t = torch.empty(info.Shape, info.ScalarType, torch.CPU);
        CopyInto(t, basePointer + dataStart + info.Begin, info.ByteLength);
        if (dtype is { } target && target != info.ScalarType)
        {
            t = t.to_type(target);
        }

        if (device is not null && device.type != DeviceType.CPU)
        {
            t = t.to(device);
        }

        return t.MoveToOuterDisposeScope();
    }

    /// <summary>Reads every tensor.</summary>
    /// <param name="device">Target device; <see langword="null"/> = CPU.</param>
    /// <param name="dtype">Target dtype for floating-point tensors; <see langword="null"/> = as stored. Integer and bool tensors keep theirs.</param>
    /// <returns>Tensors by name.</returns>
    public Dictionary<string, Tensor> ReadAll(Device? device = null, ScalarType? dtype = null)
    {
        var result = new Dictionary<string, Tensor>(tensors.Count, StringComparer.Ordinal);
        foreach (var info in tensors.Values)
        {
            var target = dtype is { } d && IsFloat(info.ScalarType) ? d : (ScalarType?)null;
            result[info.Name] = Read(info.Name, device, target);
        }

        return result;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (disposed)
        {
            return;
        }

        disposed = true;
        view.SafeMemoryMappedViewHandle.ReleasePointer();
        view.Dispose();
        map.Dispose();
    }

    internal static bool IsFloat(ScalarType t) => t is ScalarType.Float64 or ScalarType.Float32 or ScalarType.Float16 or ScalarType.BFloat16;

    /// <summary>Copies <paramref name="byteLength"/> bytes into a contiguous CPU tensor, in chunks below 2 GiB.</summary>
    private static void CopyInto(Tensor target, byte* source, long byteLength)
    {
        if (byteLength == 0)
        {
            return;
        }

        if (byteLength <= int.MaxValue)
        {
            new ReadOnlySpan<byte>(source, (int)byteLength).CopyTo(target.bytes);
            return;
        }

        // Span lengths are int: copy a flat view chunk by chunk.
        using var flat = target.view(-1);
        var elementSize = byteLength / flat.shape[0];
        var chunkElements = (int.MaxValue / 2) / elementSize;
        for (long start = 0; start < flat.shape[0]; start += chunkElements)
        {
            var count = Math.Min(chunkElements, flat.shape[0] - start);
            using var chunk = flat.narrow(0, start, count);
            new ReadOnlySpan<byte>(source + (start * elementSize), (int)(count * elementSize)).CopyTo(chunk.bytes);
        }
    }

    private static (Dictionary<string, SafeTensorInfo> Entries, Dictionary<string, string> Metadata) ParseHeader(string path, ReadOnlySpan<byte> header, long dataLength)
    {
        if (!System.Text.Unicode.Utf8.IsValid(header))
        {
            throw new InvalidDataException($"safetensors file '{path}': header is not valid UTF-8 (corrupt header or wrong header length).");
        }

        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(header.ToArray(), new JsonDocumentOptions { MaxDepth = 8, AllowDuplicateProperties = false });
        }
        catch (JsonException e)
        {
            if (InputFile.FindRepeatedKey(System.Text.Encoding.UTF8.GetString(header)) is { } repeated)
            {
                throw new InvalidDataException($"safetensors file '{path}': key '{InputFile.Bound(repeated.Key)}' appears twice in the same header object.", e);
            }

            throw new InvalidDataException($"safetensors file '{path}': header is not valid JSON ({InputFile.Bound(e.Message)}).", e);
        }

        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
            {
                throw new InvalidDataException($"safetensors file '{path}': header must be a JSON object, found {doc.RootElement.ValueKind}.");
            }

            var entries = new Dictionary<string, SafeTensorInfo>(StringComparer.Ordinal);
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var property in doc.RootElement.EnumerateObject())
            {
                if (property.Name == "__metadata__")
                {
                    ParseMetadata(path, property.Value, metadata);
                    continue;
                }

                var info = ParseEntry(path, property.Name, property.Value, dataLength);
                if (!entries.TryAdd(info.Name, info))
                {
                    throw new InvalidDataException($"safetensors file '{path}': tensor '{InputFile.Bound(info.Name)}' appears twice in the header.");
                }
            }

            CheckLayout(path, entries.Values, dataLength);
            return (entries, metadata);
        }
    }

    private static void ParseMetadata(string path, JsonElement value, Dictionary<string, string> metadata)
    {
        if (value.ValueKind != JsonValueKind.Object)
        {
            throw new InvalidDataException($"safetensors file '{path}': __metadata__ must be an object of strings, found {value.ValueKind}.");
        }

        foreach (var kv in value.EnumerateObject())
        {
            if (kv.Value.ValueKind != JsonValueKind.String)
            {
                throw new InvalidDataException($"safetensors file '{path}': __metadata__ key '{InputFile.Bound(kv.Name)}' must be a string, found {kv.Value.ValueKind}.");
            }

            metadata[kv.Name] = kv.Value.GetString()!;
        }
    }

    private static SafeTensorInfo ParseEntry(string path, string name, JsonElement value, long dataLength)
    {
        string Where() => $"safetensors file '{path}', tensor '{InputFile.Bound(name)}'";
        string Shape(long[] dims) => InputFile.Bound(string.Join(", ", dims));
        if (value.ValueKind != JsonValueKind.Object)
        {
            throw new InvalidDataException($"{Where()}: entry must be an object with dtype, shape and data_offsets, found {value.ValueKind}.");
        }

        if (!value.TryGetProperty("dtype", out var dtypeElement) || dtypeElement.ValueKind != JsonValueKind.String)
        {
            throw new InvalidDataException($"{Where()}: missing or non-string 'dtype'.");
        }

        var dtypeName = dtypeElement.GetString()!;
        if (!SafeTensorsDType.TryParse(dtypeName, out var scalarType, out var elementSize))
        {
            throw new InvalidDataException($"{Where()}: unsupported dtype '{InputFile.Bound(dtypeName)}' (supported: {SafeTensorsDType.Supported}).");
        }

        if (!value.TryGetProperty("shape", out var shapeElement) || shapeElement.ValueKind != JsonValueKind.Array)
        {
            throw new InvalidDataException($"{Where()}: missing or non-array 'shape'.");
        }

        var shape = new long[shapeElement.GetArrayLength()];
        long elements = 1;
        var i = 0;
        foreach (var d in shapeElement.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt64(out var dim) || dim < 0)
            {
                throw new InvalidDataException($"{Where()}: shape entry {i} is not a non-negative integer ({InputFile.Bound(d.GetRawText())}).");
            }

            shape[i++] = dim;
            try
            {
                elements = checked(elements * dim);
            }
            catch (OverflowException)
            {
                throw new InvalidDataException($"{Where()}: shape [{Shape(shape)}] overflows the element count.");
            }
        }

        if (!value.TryGetProperty("data_offsets", out var offsetsElement) || offsetsElement.ValueKind != JsonValueKind.Array || offsetsElement.GetArrayLength() != 2)
        {
            throw new InvalidDataException($"{Where()}: 'data_offsets' must be an array of two integers.");
        }

        var begin = offsetsElement[0];
        var end = offsetsElement[1];
        if (!begin.TryGetInt64(out var b) || !end.TryGetInt64(out var e) || b < 0 || e < b)
        {
            throw new InvalidDataException($"{Where()}: data_offsets [{InputFile.Bound(begin.GetRawText())}, {InputFile.Bound(end.GetRawText())}] are not 0 <= begin <= end.");
        }

        if (e > dataLength)
        {
            throw new InvalidDataException($"{Where()}: data_offsets [{b}, {e}] run past the end of the data section ({dataLength} bytes; truncated file?).");
        }

        long expected;
        try
        {
            expected = checked(elements * elementSize);
        }
        catch (OverflowException)
        {
            throw new InvalidDataException($"{Where()}: shape [{Shape(shape)}] × {elementSize} bytes overflows.");
        }

        if (e - b != expected)
        {
            throw new InvalidDataException($"{Where()}: data_offsets span {e - b} bytes but dtype {InputFile.Bound(dtypeName)} with shape [{Shape(shape)}] needs {expected}.");
        }

        return new SafeTensorInfo(name, dtypeName, scalarType, shape, b, e);
    }

    /// <summary>
    /// The data section must be exactly the tensors' bytes, back to back: sorted by offsets, each tensor starts where the
    /// previous one ended (the first at 0) and the last ends at the end of the file, as the reference reader requires.
    /// </summary>
    private static void CheckLayout(string path, IEnumerable<SafeTensorInfo> entries, long dataLength)
    {
        long expected = 0;
        SafeTensorInfo? previous = null;
        foreach (var info in entries.OrderBy(x => x.Begin).ThenBy(x => x.End))
        {
            if (info.Begin != expected)
            {
                throw new InvalidDataException(previous is null
                    ? $"safetensors file '{path}': the first tensor '{InputFile.Bound(info.Name)}' starts at data offset {info.Begin}, not 0 (corrupt header or wrong header length)."
                    : info.Begin < expected
                        ? $"safetensors file '{path}': tensor '{InputFile.Bound(info.Name)}' [{info.Begin}, {info.End}) overlaps tensor '{InputFile.Bound(previous.Name)}' [{previous.Begin}, {previous.End})."
                        : $"safetensors file '{path}': {info.Begin - expected} unused bytes between tensor '{InputFile.Bound(previous.Name)}' (ends at {expected}) and tensor '{InputFile.Bound(info.Name)}' (starts at {info.Begin}).");
            }

            expected = info.End;
            previous = info;
        }

        if (expected != dataLength)
        {
            throw new InvalidDataException($"safetensors file '{path}': the tensors cover {expected} bytes but the data section after the header is {dataLength} bytes (wrong header length, truncated or padded file).");
        }
    }
}
