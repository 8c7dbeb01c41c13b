using System.Collections.Concurrent;
using TorchSharp;
using static TorchSharp.torch;

// In the root namespace so that every Distill.* namespace sees the helpers without a using directive.
namespace Distill;

/// <summary>
/// Scalar arguments for TorchSharp that stay alive while libtorch reads them.
/// </summary>
/// <remarks>
/// TorchSharp turns a number into a <see cref="Scalar"/> (a finalizable wrapper of a native <c>c10::Scalar*</c>) by an
/// implicit conversion, reads its raw handle and P/Invokes without <see cref="GC.KeepAlive(object)"/>. Nothing roots that
/// temporary during the native call, so when another thread allocates (the trainer's batch prefetch) the GC may finalize it
/// and free the native scalar while libtorch is still reading it (seen as a crash in <c>c10::Scalar::toFloat</c> under
/// <c>masked_fill</c>). The same happens inside TorchSharp: the Tensor operators with a number (<c>t * 0.5</c>,
/// <c>1 - t</c>) convert it, and <c>add(Tensor)</c> / <c>add(Scalar)</c> / <c>operator +</c> pass a temporary
/// <c>alpha = 1</c>. The rule (enforced by the ScalarTemporaries test): compile-time constants go through
/// <see cref="Constant(double)"/> (a process-wide rooted cache), runtime values through the helpers below, which create the
/// Scalar with <c>using</c> so it is disposed only after the native call returns. The helpers call the same TorchSharp
/// entry points with the same values, so results are bit-identical.
/// </remarks>
internal static class TorchScalars
{
    private static readonly ConcurrentDictionary<(int Kind, long Bits), Scalar> Constants = new();

    /// <summary>The integer 1 as a rooted Scalar: the <c>alpha</c> that <c>add</c> uses when none is given.</summary>
    internal static Scalar One { get; } = Constant(1L);

    /// <summary>
    /// A rooted, never-freed Scalar for a compile-time constant (cached per value, so the set stays as small as the set of
    /// literals in the source). Never pass a runtime value here: use a helper or <c>using var s = value.ToScalar();</c>.
    /// </summary>
    internal static Scalar Constant(long value) => Constants.GetOrAdd((0, value), static k => k.Bits.ToScalar());

    /// <inheritdoc cref="Constant(long)"/>
    internal static Scalar Constant(double value) =>
        Constants.GetOrAdd((1, BitConverter.DoubleToInt64Bits(value)), static k => BitConverter.Int64BitsToDouble(k.Bits).ToScalar());

    /// <inheritdoc cref="Constant(long)"/>
    internal static Scalar Constant(bool value) => Constants.GetOrAdd((2, value ? 1 : 0), static k => (k.Bits != 0).ToScalar());

    /// <summary><c>x + other</c> (TorchSharp's <c>operator +</c> passes a temporary <c>alpha</c>).</summary>
    internal static Tensor Add(this Tensor x, Tensor other) => x.add(other, One);

    /// <summary><c>x + value</c>.</summary>
    internal static Tensor Add(this Tensor x, double value)
    {
        using var s = value.ToScalar();
        return x.add(s, One);
    }

    /// <summary><c>x + value</c> with an integer Scalar (keeps integer tensors integer).</summary>
    internal static Tensor Add(this Tensor x, long value)
    {
        using var s = value.ToScalar();
        return x.add(s, One);
    }

    /// <summary><c>x - value</c>.</summary>
    internal static Tensor Sub(this Tensor x, double value)
    {
        using var s = value.ToScalar();
        return x.sub(s);
    }

    /// <summary><c>x - value</c> with an integer Scalar.</summary>
    internal static Tensor Sub(this Tensor x, long value)
    {
        using var s = value.ToScalar();
        return x.sub(s);
    }

    /// <summary><c>value - x</c>, computed as TorchSharp's operator does: <c>(-x) + value</c>.</summary>
    internal static Tensor RSub(this Tensor x, double value)
    {
        using var s = value.ToScalar();
        return x.negative().add(s, One);
    }

    /// <summary><c>value - x</c> with an integer Scalar.</summary>
    internal static Tensor RSub(this Tensor x, long value)
    {
        using var s = value.ToScalar();
        return x.negative().add(s, One);
    }

    /// <summary><c>x * value</c>.</summary>
    internal static Tensor Mul(this Tensor x, double value)
    {
        using var s = value.ToScalar();
        return x.mul(s);
    }

    /// <summary><c>x * value</c> with an integer Scalar.</summary>
    internal static Tensor Mul(this Tensor x, long value)
    {
        using var s = value.ToScalar();
        return x.mul(s);
    }

    /// <summary><c>x / value</c>.</summary>
    internal static Tensor Div(this Tensor x, double value)
    {
        using var s = value.ToScalar();
        return x.div(s);
    }

    /// <summary><c>x / value</c> with an integer Scalar.</summary>
    internal static Tensor Div(this Tensor x, long value)
    {
        using var s = value.ToScalar();
        return x.div(s);
    }

    /// <summary><c>value / x</c>, computed as TorchSharp's operator does: <c>x.reciprocal() * value</c>.</summary>
    internal static Tensor RDiv(this Tensor x, double value)
    {
        using var s = value.ToScalar();
        return x.reciprocal().mul(s);
    }

    /// <summary><c>x % value</c> with an integer Scalar.</summary>
    internal static Tensor Remainder(this Tensor x, long value)
    {
        using var s = value.ToScalar();
        return x.remainder(s);
    }

    /// <summary><c>x.masked_fill(mask, value)</c>.</summary>
    internal static Tensor MaskedFill(this Tensor x, Tensor mask, double value)
    {
        using var s = value.ToScalar();
        return x.masked_fill(mask, s);
    }

    /// <summary><c>x.masked_fill(mask, value)</c> with an integer Scalar (token ids).</summary>
    internal static Tensor MaskedFill(this Tensor x, Tensor mask, long value)
    {
        using var s = value.ToScalar();
        return x.masked_fill(mask, s);
    }

    /// <summary><c>x.eq(value)</c> with an integer Scalar.</summary>
    internal static Tensor Eq(this Tensor x, long value)
    {
        using var s = value.ToScalar();
        return x.eq(s);
    }

    /// <summary><c>x.ne(value)</c> with an integer Scalar.</summary>
    internal static Tensor Ne(this Tensor x, long value)
    {
        using var s = value.ToScalar();
        return x.ne(s);
    }

    /// <summary><c>x.mul_(value)</c> (in place).</summary>
    internal static Tensor MulInPlace(this Tensor x, double value)
    {
        using var s = value.ToScalar();
        return x.mul_(s);
    }

    /// <summary><c>x + alpha·other</c>.</summary>
    internal static Tensor Add(this Tensor x, Tensor other, double alpha)
    {
        using var s = alpha.ToScalar();
        return x.add(other, s);
    }

    /// <summary><c>x += alpha·other</c> (in place).</summary>
    internal static Tensor AddInPlace(this Tensor x, Tensor other, double alpha)
    {
        using var s = alpha.ToScalar();
        return x.add_(other, s);
    }

    /// <summary><c>torch.full_like(x, value)</c>.</summary>
    internal static Tensor FullLike(this Tensor x, double value)
    {
        using var s = value.ToScalar();
        return full_like(x, s);
    }

    /// <summary><c>torch.full_like(x, value)</c> with an integer Scalar (token ids).</summary>
    internal static Tensor FullLike(this Tensor x, long value)
    {
        using var s = value.ToScalar();
        return full_like(x, s);
    }

    /// <summary><c>torch.full(rows, columns, value)</c> with an integer Scalar (token ids).</summary>
    internal static Tensor Full(long rows, long columns, long value, ScalarType? dtype = null, Device? device = null)
    {
        using var s = value.ToScalar();
        return full(rows, columns, s, dtype, device);
    }

    /// <summary><c>x.lt(value)</c>.</summary>
    internal static Tensor Lt(this Tensor x, double value)
    {
        using var s = value.ToScalar();
        return x.lt(s);
    }

    /// <summary><c>x.lt(value)</c> with an integer Scalar.</summary>
    internal static Tensor Lt(this Tensor x, long value)
    {
        using var s = value.ToScalar();
        return x.lt(s);
    }

    /// <summary><c>x.le(value)</c>.</summary>
    internal static Tensor Le(this Tensor x, double value)
    {
        using var s = value.ToScalar();
        return x.le(s);
    }

    /// <summary><c>x.ge(value)</c> with an integer Scalar.</summary>
    internal static Tensor Ge(this Tensor x, long value)
    {
        using var s = value.ToScalar();
        return x.ge(s);
    }

    /// <summary><c>x.clamp_max(value)</c> with an integer Scalar.</summary>
    internal static Tensor ClampMax(this Tensor x, long value)
    {
        using var s = value.ToScalar();
        return x.clamp_max(s);
    }

    /// <summary><c>torch.arange(start, stop)</c> with integer Scalars (TorchSharp's two-argument overload passes a temporary step).</summary>
    internal static Tensor Arange(long start, long stop, ScalarType? dtype = null, Device? device = null)
    {
        using var a = start.ToScalar();
        using var b = stop.ToScalar();
        return arange(a, b, One, dtype, device);
    }

    /// <summary><c>torch.arange(stop)</c> with an integer Scalar (TorchSharp's overload passes a temporary start and step).</summary>
    internal static Tensor Arange(long stop, ScalarType? dtype = null, Device? device = null)
    {
        using var b = stop.ToScalar();
        return arange(Constant(0L), b, One, dtype, device);
    }
}
