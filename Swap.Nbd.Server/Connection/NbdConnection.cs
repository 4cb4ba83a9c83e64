using System.Buffers;
using System.IO.Pipelines;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Swap.Nbd.Protocol;
using Swap.Nbd.Server.Hosting;
using Swap.Slabs.Buffers;

namespace Swap.Nbd.Server.Connection;

/// <summary>
/// One client connection: the fixed-newstyle handshake, then the transmission phase with many requests in flight.
/// Replies leave through one writer, guarded by <see cref="_writeLock"/>, in whatever order requests complete.
/// </summary>
internal sealed partial class NbdConnection : IAsyncDisposable
{
    // A reply batch is sent once this much is buffered, so a burst of large reads cannot pile up in memory.
    private const int FlushThreshold = 256 * 1024;
    // How long a graceful close waits for the client to hang up after the server's FIN.
    private static readonly TimeSpan LingerTimeout = TimeSpan.FromSeconds(2);

    private readonly Socket _socket;
    private readonly NetworkStream _stream;
    private readonly PipeReader _input;
    private readonly PipeWriter _output;
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private readonly NbdExport _export;
    private readonly NbdServerOptions _options;
    private readonly NbdServerState _state;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly PinnedBufferPool _buffers;
    private readonly CancellationTokenSource _abort = new();

    public NbdConnection(long id, Socket socket, NbdExport export, NbdServerOptions options, NbdServerState state,
        PinnedBufferPool buffers, TimeProvider time, ILogger logger)
    {
        Id = id;
        _socket = socket;
        _stream = new NetworkStream(socket, ownsSocket: true);
        _input = PipeReader.Create(_stream, new StreamPipeReaderOptions(bufferSize: 64 * 1024, minimumReadSize: 16 * 1024, leaveOpen: true));
        _output = PipeWriter.Create(_stream, new StreamPipeWriterOptions(minimumBufferSize: 64 * 1024, leaveOpen: true));
        _export = export;
        _options = options;
        _state = state;
        _buffers = buffers;
        _time = time;
        _logger = logger;
    }

    public long Id { get; }

    /// <summary>Runs the connection to its end; never throws.</summary>
    public async Task RunAsync()
    {
        try
        {
            if (await HandshakeAsync().ConfigureAwait(false))
            {
                await TransmissionAsync().ConfigureAwait(false);
                await LingerAsync().ConfigureAwait(false);
            }
        }
        catch (NbdProtocolException ex)
        {
            ServerLog.ProtocolViolation(_logger, Id, ex.Message);
        }
        catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException or OperationCanceledException or EndOfStreamException)
        {
            ServerLog.IoClosed(_logger, Id, ex.Message);
        }
        catch (Exception ex)
        {
            ServerLog.Unexpected(_logger, ex, Id);
        }
        finally
        {
            await WaitForInFlightAsync().ConfigureAwait(false);
            ServerLog.Closed(_logger, Id);
        }
    }

    /// <summary>
    /// Graceful close: send FIN after the last reply, then read and drop whatever the client still sends until it
    /// hangs up. Closing with unread input makes the kernel send a RST, and a RST can destroy replies that are
    /// still on their way to the client (a request that raced a shutdown would cost the answers to the ones before it).
    /// </summary>
    private async Task LingerAsync()
    {
        try
        {
            _socket.Shutdown(SocketShutdown.Send);
            using var deadline = new CancellationTokenSource(LingerTimeout, _time);
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(deadline.Token, _abort.Token);
            while (true)
            {
                var result = await _input.ReadAsync(linked.Token).ConfigureAwait(false);
                _input.AdvanceTo(result.Buffer.End);
                if (result.IsCompleted)
                {
                    return;
                }
            }
        }
        catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException or OperationCanceledException)
        {
            // The client is gone or too slow to hang up: close anyway.
        }
    }

    /// <summary>Closes the socket at once: pending reads and writes fail and the connection ends.</summary>
    public void Abort()
    {
        try
        {
            _abort.Cancel();
            _socket.Shutdown(SocketShutdown.Both);
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            // Already closed.
        }
    }

    public async ValueTask DisposeAsync()
    {
        // Close the socket first and complete the writer with an error so it does not try to send what is still
        // buffered: every normal exit has flushed already, and pushing leftovers at a client that never reads would
        // block forever, or throw if the client reset the connection.
        await _stream.DisposeAsync().ConfigureAwait(false);
        await _input.CompleteAsync().ConfigureAwait(false);
        await _output.CompleteAsync(new IOException("connection closed")).ConfigureAwait(false);
        _writeLock.Dispose();
        _abort.Dispose();
    }

    /// <summary>Fills <paramref name="destination"/> from the input, or throws if the client closes first.</summary>
    private async ValueTask ReadExactAsync(Memory<byte> destination, CancellationToken cancellationToken)
    {
        if (destination.IsEmpty)
        {
            return;
        }

        var result = await _input.ReadAtLeastAsync(destination.Length, cancellationToken).ConfigureAwait(false);
        var buffer = result.Buffer;
        if (buffer.Length < destination.Length)
        {
            _input.AdvanceTo(buffer.Start, buffer.End);
            throw new EndOfStreamException("client closed the connection");
        }

        buffer.Slice(0, destination.Length).CopyTo(destination.Span);
        _input.AdvanceTo(buffer.GetPosition(destination.Length));
    }

    /// <summary>Consumes and drops <paramref name="count"/> bytes without holding them in memory.</summary>
    private async ValueTask DiscardAsync(long count, CancellationToken cancellationToken)
    {
        while (count > 0)
        {
            var result = await _input.ReadAsync(cancellationToken).ConfigureAwait(false);
            var n = Math.Min(count, result.Buffer.Length);
            _input.AdvanceTo(result.Buffer.GetPosition(n));
            count -= n;
            if (count > 0 && result.IsCompleted)
            {
                throw new EndOfStreamException("client closed the connection");
            }
        }
    }

    private async ValueTask FlushAsync(CancellationToken cancellationToken)
    {
        var result = await _output.FlushAsync(cancellationToken).ConfigureAwait(false);
        if (result.IsCanceled || result.IsCompleted)
        {
            throw new IOException("client stopped reading");
        }
    }

    private static void WriteTo(PipeWriter writer, ReadOnlySpan<byte> bytes)
    {
        var span = writer.GetSpan(bytes.Length);
        bytes.CopyTo(span);
        writer.Advance(bytes.Length);
    }

    private static void CopyTo(in ReadOnlySequence<byte> source, PipeWriter writer)
    {
        foreach (var segment in source)
        {
            WriteTo(writer, segment.Span);
        }
    }
}
