using static TorchSharp.torch;

namespace Distill.IO;

/// <summary>Maps safetensors dtype names to TorchSharp element types and sizes.</summary>
internal static class SafeTensorsDType
{
    private static readonly Dictionary<string, (ScalarType Type, int Size)> ByName = new(StringComparer.Ordinal)
    {
        ["F64"] = (ScalarType.Float64, 8),
        ["F32"] = (ScalarType.Float32, 4),
        ["F16"] = (ScalarType.Float16, 2),
        ["BF16"] = (ScalarType.BFloat16, 2),
        ["I64"] = (ScalarType.Int64, 8),
        ["I32"] = (ScalarType.Int32, 4),
        ["I16"] = (ScalarType.Int16, 2),
        ["I8"] = (ScalarType.Int8, 1),
        ["U8"] = (ScalarType.Byte, 1),
        ["BOOL"] = (ScalarType.Bool, 1),
    };

    /// <summary>Gets the supported dtype names, for error messages.</summary>
    internal static string Supported => string.Join(", ", ByName.Keys);

    internal static bool TryParse(string name, out ScalarType type, out int size)
    {
        if (ByName.TryGetValue(name, out var entry))
        {
            type = entry.Type;
            size = entry.Size;
            return true;
        }

        type = default;
        size = 0;
        return false;
    }

    internal static string NameOf(ScalarType type) => type switch
    {
        ScalarType.Float64 => "F64",
        ScalarType.Float32 => "F32",
        ScalarType.Float16 => "F16",
        ScalarType.BFloat16 => "BF16",
        ScalarType.Int64 => "I64",
        ScalarType.Int32 => "I32",
        ScalarType.Int16 => "I16",
        ScalarType.Int8 => "I8",
        ScalarType.Byte => "U8",
        ScalarType.Bool => "BOOL",
        _ => throw new NotSupportedException($"Tensor dtype {type} cannot be written to safetensors (supported: {Supported})."),
    };

    internal static int SizeOf(ScalarType type) => ByName[NameOf(type)].Size;
}
