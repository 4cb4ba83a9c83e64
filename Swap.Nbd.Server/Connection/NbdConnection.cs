using System.Buffers;
using System.IO.Pipelines;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Swap.Nbd.Protocol;
using Swap.Nbd.Server.Hosting;
using Swap.Common.Buffers;

namespace Swap.Nbd.Server.Connection;

/// <summary>
/// One client connection: the fixed-newstyle handshake, then the transmission phase with many requests in flight.
/// Replies leave through one writer, guarded by <see cref="_writeLock"/>, in whatever order requests complete.
/// </summary>
internal sealed partial class NbdConnection : IAsyncDisposable
{
    // A reply batch is sent once this much is buffered, so a burst of large reads cannot pile up in memory.
    private const int FlushThreshold = 256 * 1024;

    private readonly Socket _socket;
    private readonly SocketTransport _transport;
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
        _transport = new SocketTransport(socket, options.PollMicroseconds, state, () => Interlocked.Read(ref _inFlight) == 0);
        _input = _transport.Input;
        _output = _transport.Output;
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
            _transport.Start($"nbd-connection-{Id}");
            if (await HandshakeAsync().ConfigureAwait(false))
            {
                await TransmissionAsync().ConfigureAwait(false);
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
        // Every reply that will ever be sent has been flushed by now. Completing the writer with an exception keeps
        // it from trying to send leftovers to a peer that may be gone (which could throw or block).
        try
        {
            await _output.CompleteAsync(new ObjectDisposedException(nameof(NbdConnection))).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException or OperationCanceledException)
        {
            // The socket is being torn down anyway.
        }

        // A stopping server lingers less, so the shutdown timeout still bounds the stop.
        await _transport.CloseAsync(_state.IsStopping ? TimeSpan.FromMilliseconds(500) : TimeSpan.FromSeconds(2), _time).ConfigureAwait(false);
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
}
