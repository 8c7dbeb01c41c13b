using System.Globalization;
using TorchSharp;

namespace Distill.Runtime;

/// <summary>The device and compute dtype Distill runs on, and why they were chosen.</summary>
/// <param name="Device">The torch device (cpu or cuda:N).</param>
/// <param name="DType">The compute dtype for model weights and activations (losses always upcast to float32).</param>
/// <param name="Reason">A short explanation for logs.</param>
public sealed record ComputeContext(torch.Device Device, torch.ScalarType DType, string Reason);

/// <summary>Parses device/dtype option strings and resolves <c>auto</c>. The one place Distill decides where to compute.</summary>
internal static class ComputeSelector
{
    internal static ComputeContext Select(string device, string dtype)
    {
        var (dev, devReason) = ResolveDevice(device);
        var (type, typeReason) = ResolveDType(dtype, dev);
        return new ComputeContext(dev, type, $"{devReason}; {typeReason}");
    }

    internal static (torch.Device Device, string Reason) ResolveDevice(string device)
    {
        string d = (device ?? "auto").Trim().ToLowerInvariant();
        if (d == "auto")
        {
            return torch.cuda.is_available()
                ? (new torch.Device(DeviceType.CUDA, 0), $"auto: CUDA available ({torch.cuda.device_count()} device(s))")
                : (torch.CPU, "auto: CUDA not available, using CPU");
        }

        if (d == "cpu")
        {
            return (torch.CPU, "cpu requested");
        }

        if (d == "cuda" || d.StartsWith("cuda:", StringComparison.Ordinal))
        {
            int index = d == "cuda" ? 0 : ParseIndex(d[5..], device!);
            if (!torch.cuda.is_available())
            {
                throw new InvalidOperationException(
                    $"Device '{device}' requested but CUDA is not available (TorchSharp-cpu package, no GPU, or driver missing). Use 'auto' or 'cpu'.");
            }

            int count = torch.cuda.device_count();
            if (index >= count)
            {
                throw new ArgumentOutOfRangeException(nameof(device), $"Device '{device}' requested but only {count} CUDA device(s) exist.");
            }

            return (new torch.Device(DeviceType.CUDA, index), $"{device} requested");
        }

        throw new ArgumentException($"Unknown device '{device}'. Expected auto, cpu, cuda or cuda:N.", nameof(device));
    }

    internal static (torch.ScalarType DType, string Reason) ResolveDType(string dtype, torch.Device device)
    {
        string t = (dtype ?? "auto").Trim().ToLowerInvariant();
        return t switch
        {
            "auto" => device.type == DeviceType.CUDA
                ? (torch.ScalarType.BFloat16, "auto dtype: bfloat16 on CUDA")
                : (torch.ScalarType.Float32, "auto dtype: float32 on CPU"),
            "float32" or "fp32" or "float" => (torch.ScalarType.Float32, "float32 requested"),
            "bfloat16" or "bf16" => (torch.ScalarType.BFloat16, "bfloat16 requested"),
            "float16" or "fp16" or "half" => (torch.ScalarType.Float16, "float16 requested"),
            _ => throw new ArgumentException($"Unknown dtype '{dtype}'. Expected auto, float32, bfloat16 or float16.", nameof(dtype)),
        };
    }

    /// <summary>Checks an option string without touching the native runtime (for options validation).</summary>
    internal static string? ValidateDeviceString(string? device)
    {
        string d = (device ?? string.Empty).Trim().ToLowerInvariant();
        if (d is "auto" or "cpu" or "cuda")
        {
            return null;
        }

        return d.StartsWith("cuda:", StringComparison.Ordinal) && int.TryParse(d[5..], NumberStyles.None, CultureInfo.InvariantCulture, out _)
            ? null
            : $"Device '{device}' is not one of auto, cpu, cuda, cuda:N.";
    }

    /// <summary>Checks a dtype option string without touching the native runtime.</summary>
    internal static string? ValidateDTypeString(string? dtype) =>
        (dtype ?? string.Empty).Trim().ToLowerInvariant() is "auto" or "float32" or "fp32" or "float" or "bfloat16" or "bf16" or "float16" or "fp16" or "half"
            ? null
            : $"DType '{dtype}' is not one of auto, float32, bfloat16, float16.";

    private static int ParseIndex(string text, string original) =>
        int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int index)
            ? index
            : throw new ArgumentException($"Bad CUDA device index in '{original}'.", nameof(original));
}
