using System.Text;

namespace Distill.Data;

/// <summary>Bounded, streaming record reading for dataset files: lines are never held beyond the record limit.</summary>
internal static class RecordReader
{
    /// <summary>
    /// Streams the lines of <paramref name="stream"/> as (buffer, length, 1-based line number); the buffer is reused, so each
    /// line must be consumed before the next is read. A UTF-8 BOM is skipped; a trailing CR is removed.
    /// </summary>
    /// <exception cref="InvalidDataException">A line is longer than <paramref name="maxBytes"/>; the message names the file and line.</exception>
    public static IEnumerable<(byte[] Buffer, int Length, int LineNumber)> Lines(Stream stream, string source, int maxBytes)
    {
        var chunk = new byte[64 * 1024];
        var line = new byte[Math.Min(maxBytes, 4096)];
        var length = 0;
        var lineNumber = 1;
        var start = true;
        int n;
        while ((n = stream.Read(chunk)) > 0)
        {
            var pos = 0;
            if (start && chunk.AsSpan(0, n).StartsWith((ReadOnlySpan<byte>)[0xEF, 0xBB, 0xBF]))
            {
                pos = 3;
            }

            start = false;
            while (pos < n)
            {
                var newline = chunk.AsSpan(pos, n - pos).IndexOf((byte)'\n');
                var partLength = newline < 0 ? n - pos : newline;
                if ((long)length + partLength > maxBytes)
                {
                    throw new InvalidDataException(
                        $"{source}:{lineNumber}: record is longer than {maxBytes} bytes (the limit, {nameof(JsonReadOptions)}.{nameof(JsonReadOptions.MaxRecordBytes)}).");
                }

                if (length + partLength > line.Length)
                {
                    Array.Resize(ref line, (int)Math.Min(maxBytes, Math.Max((long)line.Length * 2, length + partLength)));
                }

                Array.Copy(chunk, pos, line, length, partLength);
                length += partLength;
                if (newline < 0)
                {
                    break;
                }

                yield return (line, length > 0 && line[length - 1] == '\r' ? length - 1 : length, lineNumber);
                lineNumber++;
                length = 0;
                pos += partLength + 1;
            }
        }

        if (length > 0)
        {
            yield return (line, line[length - 1] == '\r' ? length - 1 : length, lineNumber);
        }
    }

    /// <summary>The byte offset of the first invalid UTF-8 sequence.</summary>
    public static int FirstInvalidUtf8(ReadOnlySpan<byte> bytes)
    {
        var offset = 0;
        while (offset < bytes.Length)
        {
            var status = Rune.DecodeFromUtf8(bytes[offset..], out _, out var consumed);
            if (status != System.Buffers.OperationStatus.Done)
            {
                return offset;
            }

            offset += consumed;
        }

        return -1;
    }

    /// <summary>Replaces each invalid UTF-8 sequence by U+FFFD (as <see cref="Encoding.UTF8"/> decodes); returns the bytes and how many were replaced.</summary>
    public static (byte[] Bytes, int Count) ReplaceInvalidUtf8(ReadOnlySpan<byte> bytes)
    {
        var output = new List<byte>(bytes.Length + 16);
        Span<byte> replacement = stackalloc byte[4];
        var replacementLength = Rune.ReplacementChar.EncodeToUtf8(replacement);
        var count = 0;
        var offset = 0;
        while (offset < bytes.Length)
        {
            var status = Rune.DecodeFromUtf8(bytes[offset..], out _, out var consumed);
            if (status == System.Buffers.OperationStatus.Done)
            {
                foreach (var b in bytes.Slice(offset, consumed))
                {
                    output.Add(b);
                }
            }
            else
            {
                count++;
                foreach (var b in replacement[..replacementLength])
                {
                    output.Add(b);
                }
            }

            offset += consumed;
        }

        return ([.. output], count);
    }

    /// <summary>Thrown by <see cref="BoundedStream"/> when one record reads past the limit.</summary>
    public sealed class RecordTooLongException : IOException
    {
        public RecordTooLongException()
            : base("Record too long.")
        {
        }

        public RecordTooLongException(string message)
            : base(message)
        {
        }

        public RecordTooLongException(string message, Exception inner)
            : base(message, inner)
        {
        }
    }

    /// <summary>
    /// A read-only stream that fails once more than the limit (plus one read-ahead buffer) has been read since the last
    /// <see cref="StartRecord"/>: the JSON array reader buffers a whole element, so this bounds its memory per element.
    /// </summary>
    public sealed class BoundedStream(Stream inner, int maxRecordBytes) : Stream
    {
        private const int Slack = 1 << 20;
        private long sinceStart;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public void StartRecord() => sinceStart = 0;

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            var n = inner.Read(buffer);
            sinceStart += n;
            return sinceStart > (long)maxRecordBytes + Slack ? throw new RecordTooLongException() : n;
        }

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => ValueTask.FromResult(Read(buffer.Span));

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => Task.FromResult(Read(buffer.AsSpan(offset, count)));

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                inner.Dispose();
            }

            base.Dispose(disposing);
        }
    }
}
