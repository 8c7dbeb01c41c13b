using static TorchSharp.torch;

namespace Distill.IO;

/// <summary>One tensor entry of a safetensors header.</summary>
/// <param name="Name">The tensor name (state-dict key).</param>
/// <param name="DType">The safetensors dtype name as stored (<c>F32</c>, <c>F16</c>, <c>BF16</c>, <c>I64</c>, <c>I32</c>, <c>U8</c>, <c>BOOL</c>, ...).</param>
/// <param name="ScalarType">The TorchSharp element type for <paramref name="DType"/>.</param>
/// <param name="Shape">The tensor shape ([] for a scalar).</param>
/// <param name="Begin">Start byte offset, relative to the data section (byte <c>8 + header length</c> of the file).</param>
/// <param name="End">End byte offset (exclusive), relative to the data section.</param>
public sealed record SafeTensorInfo(string Name, string DType, ScalarType ScalarType, long[] Shape, long Begin, long End)
{
    /// <summary>Gets the number of bytes of the tensor data.</summary>
    public long ByteLength => End - Begin;

    /// <summary>Gets the number of elements (product of <see cref="Shape"/>; 1 for a scalar).</summary>
    public long ElementCount
    {
        get
        {
            long n = 1;
            foreach (var d in Shape)
            {
                n *= d;
            }

            return n;
        }
    }
}
