using System.Buffers;
using System.IO.Pipelines;

namespace Swap.Nbd.Server.Transport;

/// <summary>Byte-level reads and flushes over a connection's pipes that end the connection when the peer goes away.</summary>
internal static class PipeIo
{
    /// <summary>Fills <paramref name="destination"/> from the input, or throws if the peer closes first.</summary>
    public static async ValueTask ReadExactAsync(this PipeReader input, Memory<byte> destination, CancellationToken cancellationToken)
    {
        if (destination.IsEmpty)
        {
            return;
        }

        var result = await input.ReadAtLeastAsync(destination.Length, cancellationToken).ConfigureAwait(false);
        var buffer = result.Buffer;
        if (buffer.Length < destination.Length)
        {
            input.AdvanceTo(buffer.Start, buffer.End);
            throw new EndOfStreamException("client closed the connection");
        }

        buffer.Slice(0, destination.Length).CopyTo(destination.Span);
        input.AdvanceTo(buffer.GetPosition(destination.Length));
    }

    /// <summary>Consumes and drops <paramref name="count"/> bytes without holding them in memory.</summary>
    public static async ValueTask DiscardAsync(this PipeReader input, long count, CancellationToken cancellationToken)
    {
        while (count > 0)
        {
            var result = await input.ReadAsync(cancellationToken).ConfigureAwait(false);
            var n = Math.Min(count, result.Buffer.Length);
            input.AdvanceTo(result.Buffer.GetPosition(n));
            count -= n;
            if (count > 0 && result.IsCompleted)
            {
                throw new EndOfStreamException("client closed the connection");
            }
        }
    }

    /// <summary>Sends what is buffered, or throws if the peer stopped reading.</summary>
    public static async ValueTask FlushOrThrowAsync(this PipeWriter output, CancellationToken cancellationToken)
    {
        var result = await output.FlushAsync(cancellationToken).ConfigureAwait(false);
        if (result.IsCanceled || result.IsCompleted)
        {
            throw new IOException("client stopped reading");
        }
    }
}
