using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using TorchSharp;
using static TorchSharp.torch;

namespace Distill.IO;

/// <summary>
/// Reads and writes the safetensors format (single files and HF sharded checkpoints with
/// <c>model.safetensors.index.json</c>). Dtypes: F32, F16, BF16, F64, I64, I32, I16, I8, U8, BOOL.
/// </summary>
/// <remarks>
/// Layout: little-endian u64 header length N, N bytes of UTF-8 JSON (<c>{name: {dtype, shape, data_offsets}}</c> plus an
/// optional <c>__metadata__</c> string map), then the data section; offsets are relative to byte 8 + N. Writes pad the
/// header with spaces to a multiple of 8 (as the reference serializer does) and are atomic (temporary file + rename).
/// </remarks>
public static class SafeTensors
{
    /// <summary>The largest header accepted when reading (100 MB, the reference implementation's bound).</summary>
    public const long MaxHeaderBytes = 100_000_000;

    /// <summary>The index file name of a sharded checkpoint.</summary>
    public const string IndexFileName = "model.safetensors.index.json";

    /// <summary>The file name of an unsharded checkpoint.</summary>
    public const string SingleFileName = "model.safetensors";

    /// <summary>Opens a file for lazy, memory-mapped reading of single tensors.</summary>
    /// <param name="path">The safetensors file.</param>
    /// <returns>The open file (dispose it).</returns>
    /// <exception cref="InvalidDataException">The file is corrupt; the message names the file and tensor.</exception>
    public static SafeTensorsFile Open(string path) => SafeTensorsFile.Open(path);

    /// <summary>Loads every tensor of a file.</summary>
    /// <param name="path">The safetensors file.</param>
    /// <param name="device">Target device; <see langword="null"/> = CPU.</param>
    /// <returns>Tensors by name, in their stored dtype.</returns>
    /// <exception cref="InvalidDataException">The file is corrupt; the message names the file and tensor.</exception>
    public static Dictionary<string, Tensor> Load(string path, Device? device = null)
    {
        using var file = SafeTensorsFile.Open(path);
        return file.ReadAll(device);
    }

    /// <summary>Writes tensors (any device, contiguous or not) to one file, atomically.</summary>
    /// <param name="path">The target file.</param>
    /// <param name="tensors">Tensors by name.</param>
    /// <param name="metadata">Optional <c>__metadata__</c> (e.g. <c>{"format": "pt"}</c>, which HF writes).</param>
    public static void Save(string path, IReadOnlyDictionary<string, Tensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(tensors);

        // Order as the reference serializer: larger element size first, then by name; offsets follow that order.
        var ordered = tensors
            .Select(kv => (Name: kv.Key, Tensor: kv.Value, DType: SafeTensorsDType.NameOf(kv.Value.dtype)))
            .OrderByDescending(x => SafeTensorsDType.SizeOf(x.Tensor.dtype))
            .ThenBy(x => x.Name, StringComparer.Ordinal)
            .ToList();

        var header = new JsonObject();
        if (metadata is { Count: > 0 })
        {
            var meta = new JsonObject();
            foreach (var kv in metadata.OrderBy(kv => kv.Key, StringComparer.Ordinal))
            {
                meta[kv.Key] = kv.Value;
            }

            header["__metadata__"] = meta;
        }

        long offset = 0;
        foreach (var (name, tensor, dtype) in ordered)
        {
            var bytes = tensor.NumberOfElements * SafeTensorsDType.SizeOf(tensor.dtype);
            header[name] = new JsonObject
            {
                ["dtype"] = dtype,
                ["shape"] = new JsonArray([.. tensor.shape.Select(d => (JsonNode)JsonValue.Create(d))]),
                ["data_offsets"] = new JsonArray(JsonValue.Create(offset), JsonValue.Create(offset + bytes)),
            };
            offset += bytes;
        }

        var json = Encoding.UTF8.GetBytes(header.ToJsonString(new JsonSerializerOptions { WriteIndented = false }));
        var padded = (json.Length + 7) / 8 * 8;
        var headerBytes = new byte[padded];
        Array.Fill(headerBytes, (byte)' ');
        json.CopyTo(headerBytes, 0);

        AtomicFile.Write(path, fs =>
        {
            Span<byte> prefix = stackalloc byte[8];
            System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(prefix, (ulong)padded);
            fs.Write(prefix);
            fs.Write(headerBytes);
            foreach (var (_, tensor, _) in ordered)
            {
                WriteTensor(fs, tensor);
            }
        });
    }

    /// <summary>
    /// Writes an HF sharded checkpoint: <c>{prefix}-0000i-of-0000n.safetensors</c> files of at most
    /// <paramref name="maxShardBytes"/> each (a larger single tensor gets its own shard) and <c>{prefix}.safetensors.index.json</c>.
    /// </summary>
    /// <param name="dir">The target folder (created if needed).</param>
    /// <param name="tensors">Tensors by name.</param>
    /// <param name="maxShardBytes">The shard size limit in bytes.</param>
    /// <param name="metadata">Optional <c>__metadata__</c> written into every shard.</param>
    /// <param name="prefix">The file prefix; <c>model</c> gives HF's names.</param>
    /// <returns>The shard file names, in order.</returns>
    /// <remarks>Shards are filled greedily in name order, as transformers' <c>split_torch_state_dict_into_shards</c> does
    /// for a size limit. Files from an earlier save with another shard count are removed after the index is written.</remarks>
    public static IReadOnlyList<string> SaveSharded(string dir, IReadOnlyDictionary<string, Tensor> tensors, long maxShardBytes, IReadOnlyDictionary<string, string>? metadata = null, string prefix = "model")
    {
        ArgumentException.ThrowIfNullOrEmpty(dir);
        ArgumentNullException.ThrowIfNull(tensors);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxShardBytes);
        Directory.CreateDirectory(dir);

        var shards = new List<List<string>>();
        var current = new List<string>();
        long currentBytes = 0;
        long total = 0;
        foreach (var name in tensors.Keys.Order(StringComparer.Ordinal))
        {
            var t = tensors[name];
            var bytes = t.NumberOfElements * SafeTensorsDType.SizeOf(t.dtype);
            if (current.Count > 0 && currentBytes + bytes > maxShardBytes)
            {
                shards.Add(current);
                current = [];
                currentBytes = 0;
            }

            current.Add(name);
            currentBytes += bytes;
            total += bytes;
        }

        if (current.Count > 0 || shards.Count == 0)
        {
            shards.Add(current);
        }

        var files = new List<string>();
        var weightMap = new JsonObject();
        for (var i = 0; i < shards.Count; i++)
        {
            var file = $"{prefix}-{i + 1:D5}-of-{shards.Count:D5}.safetensors";
            files.Add(file);
            Save(Path.Combine(dir, file), shards[i].ToDictionary(n => n, n => tensors[n], StringComparer.Ordinal), metadata);
            foreach (var name in shards[i])
            {
                weightMap[name] = file;
            }
        }

        var sortedMap = new JsonObject();
        foreach (var kv in weightMap.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            sortedMap[kv.Key] = kv.Value!.GetValue<string>();
        }

        var index = new JsonObject
        {
            ["metadata"] = new JsonObject { ["total_size"] = total },
            ["weight_map"] = sortedMap,
        };
        AtomicFile.WriteAllText(Path.Combine(dir, $"{prefix}.safetensors.index.json"), index.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");

        // Remove stale shards of an earlier save (other shard count) so the folder holds one consistent checkpoint.
        foreach (var stale in Directory.EnumerateFiles(dir, $"{prefix}-*-of-*.safetensors"))
        {
            if (!files.Contains(Path.GetFileName(stale), StringComparer.Ordinal))
            {
                File.Delete(stale);
            }
        }

        return files;
    }

    /// <summary>
    /// Loads a checkpoint folder: the sharded <c>{prefix}.safetensors.index.json</c> when present, else <c>{prefix}.safetensors</c>.
    /// </summary>
    /// <param name="dir">The folder.</param>
    /// <param name="device">Target device; <see langword="null"/> = CPU.</param>
    /// <param name="dtype">Target dtype for floating-point tensors; <see langword="null"/> = as stored.</param>
    /// <param name="prefix">The file prefix (<c>model</c>).</param>
    /// <returns>Tensors by name.</returns>
    /// <exception cref="InvalidDataException">The index is malformed, names a missing shard, or a shard lacks a tensor the index maps to it.</exception>
    public static Dictionary<string, Tensor> LoadSharded(string dir, Device? device = null, ScalarType? dtype = null, string prefix = "model")
    {
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (file, names) in ResolveCheckpoint(dir, prefix))
        {
            using var st = SafeTensorsFile.Open(file);
            foreach (var name in names ?? st.Tensors.Keys)
            {
                if (!st.Tensors.TryGetValue(name, out var info))
                {
                    throw new InvalidDataException($"Index '{Path.Combine(dir, $"{prefix}.safetensors.index.json")}' maps tensor '{name}' to '{file}', which does not contain it.");
                }

                result[name] = st.Read(name, device, dtype is { } d && SafeTensorsFile.IsFloat(info.ScalarType) ? d : null);
            }
        }

        return result;
    }

    /// <summary>
    /// Lists the files of a checkpoint folder and, for sharded ones, the tensors the index assigns to each file
    /// (<see langword="null"/> = every tensor of the file).
    /// </summary>
    internal static List<(string File, List<string>? Names)> ResolveCheckpoint(string dir, string prefix = "model")
    {
        ArgumentException.ThrowIfNullOrEmpty(dir);
        var indexPath = Path.Combine(dir, $"{prefix}.safetensors.index.json");
        if (!File.Exists(indexPath))
        {
            var single = Path.Combine(dir, $"{prefix}.safetensors");
            if (!File.Exists(single))
            {
                throw new FileNotFoundException($"Folder '{dir}' has neither '{prefix}.safetensors' nor '{prefix}.safetensors.index.json'.", single);
            }

            return [(single, null)];
        }

        var root = InputFile.ReadJsonObject(indexPath, "Index");
        if (root["weight_map"] is not JsonObject weightMap)
        {
            throw new InvalidDataException($"Index '{indexPath}' has no 'weight_map' object.");
        }

        var byFile = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        foreach (var kv in weightMap)
        {
            if (kv.Value is not JsonValue v || !v.TryGetValue<string>(out var file) || string.IsNullOrEmpty(file)
                || file.Contains('/', StringComparison.Ordinal) || file.Contains('\\', StringComparison.Ordinal) || file.Contains("..", StringComparison.Ordinal))
            {
                throw new InvalidDataException($"Index '{indexPath}': weight_map entry '{InputFile.Bound(kv.Key)}' is not a plain file name ({InputFile.Bound(kv.Value?.ToJsonString())}).");
            }

            if (!byFile.TryGetValue(file, out var list))
            {
                byFile[file] = list = [];
            }

            list.Add(kv.Key);
        }

        var result = new List<(string, List<string>?)>();
        foreach (var (file, names) in byFile.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            var path = Path.Combine(dir, file);
            if (!File.Exists(path))
            {
                throw new InvalidDataException($"Index '{indexPath}' names shard '{InputFile.Bound(file)}' (tensor '{InputFile.Bound(names[0])}'), which does not exist.");
            }

            result.Add((path, names));
        }

        return result;
    }

    private static void WriteTensor(FileStream fs, Tensor tensor)
    {
        if (tensor.NumberOfElements == 0)
        {
            return;
        }

        using var scope = torch.NewDisposeScope();
        var cpu = tensor.detach();
        if (cpu.device_type != DeviceType.CPU)
        {
            cpu = cpu.cpu();
        }

        cpu = cpu.contiguous().view(-1);
        var elementSize = SafeTensorsDType.SizeOf(tensor.dtype);
        var chunkElements = (1L << 28) / elementSize; // 256 MiB per write
        for (long start = 0; start < cpu.shape[0]; start += chunkElements)
        {
            var count = Math.Min(chunkElements, cpu.shape[0] - start);
            using var chunk = cpu.narrow(0, start, count);
            fs.Write(chunk.bytes);
        }
    }
}
