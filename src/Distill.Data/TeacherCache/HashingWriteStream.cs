using System.Security.Cryptography;

namespace Distill.Data;

/// <summary>
/// A write-only stream that passes every byte to an inner stream and into a SHA-256, so a chunk's checksum comes from the
/// bytes as they are written instead of from reading the file back.
/// </summary>
/// <remarks>
/// <see cref="Position"/> is the number of bytes written (the Arrow file writer records block offsets from it). The Arrow
/// file writer demands a seekable stream but only appends, so seeking is allowed to the current end alone; any other seek
/// throws rather than hash bytes that are not the file's.
/// </remarks>
internal sealed class HashingWriteStream(Stream inner) : Stream
{
    private readonly IncrementalHash sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    private long written;

    public override bool CanRead => false;

    public override bool CanSeek => true;

    public override bool CanWrite => true;

    public override long Length => written;

    public override long Position
    {
        get => written;
        set => Seek(value, SeekOrigin.Begin);
    }

    /// <summary>The SHA-256 of every byte written so far, lower-case hex.</summary>
    public string Sha256() => Convert.ToHexStringLower(sha.GetCurrentHash());

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        inner.Write(buffer);
        sha.AppendData(buffer);
        written += buffer.Length;
    }

    public override void WriteByte(byte value) => Write([value]);

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
    {
        Write(buffer.AsSpan(offset, count));
        return Task.CompletedTask;
    }

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        Write(buffer.Span);
        return ValueTask.CompletedTask;
    }

    public override void Flush() => inner.Flush();

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException("A hashing stream is write-only.");

    public override long Seek(long offset, SeekOrigin origin)
    {
        var target = origin switch
        {
            SeekOrigin.Begin => offset,
            SeekOrigin.Current => written + offset,
            SeekOrigin.End => written + offset,
            _ => throw new ArgumentOutOfRangeException(nameof(origin), origin, "Unknown seek origin."),
        };
        return target == written ? written : throw new NotSupportedException($"A hashing stream only appends; cannot seek to {target} (at {written}).");
    }

    public override void SetLength(long value) => throw new NotSupportedException("A hashing stream cannot change its length.");

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            sha.Dispose();
        }

        base.Dispose(disposing);
    }
}
