using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Swap.Common.Buffers;
using Swap.Nbd.Protocol;
using Swap.Nbd.Server.Handshake;
using Swap.Nbd.Server.Transmission;
using Swap.Nbd.Server.Transport;

namespace Swap.Nbd.Server.Connection;

/// <summary>
/// One client connection from accept to close: starts its transport, runs the <see cref="ServerHandshake"/>, then the
/// <see cref="TransmissionLoop"/> over the negotiated session; aborts and tears down.
/// </summary>
internal sealed class NbdConnection : IAsyncDisposable
{
    private readonly SocketTransport _transport;
    private readonly NbdExport _export;
    private readonly ConnectionSettings _settings;
    private readonly NbdServerState _state;
    private readonly InFlightBudget _budget;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly PinnedBufferPool _buffers;
    private readonly CancellationTokenSource _abort = new();
    private readonly Func<bool> _handshakeDone;
    private ReplyWriter? _replies;

    /// <param name="handshakeDone">Called when the client asked for transmission: true lets it in, false closes the
    /// connection (the host's connection places are all taken, or it closed this one meanwhile).</param>
    public NbdConnection(long id, Socket socket, NbdExport export, ConnectionSettings settings, NbdServerState state,
        PinnedBufferPool buffers, TimeProvider time, ILogger logger, Func<bool> handshakeDone)
    {
        Id = id;
        _handshakeDone = handshakeDone;
        _budget = new InFlightBudget(settings.MaxInFlightBytes, state, id, logger);
        _transport = new SocketTransport(socket, settings.PollMicroseconds, new ConnectionPollGate(_budget, state), settings.PipeBlocks);
        _export = export;
        _settings = settings;
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
            var handshake = new ServerHandshake(_transport.Input, _transport.Output, _export, _state, Id, _logger);
            if (await handshake.RunAsync(_settings.HandshakeTimeout, _time, _abort.Token).ConfigureAwait(false) is { } session
                && _handshakeDone())
            {
                await TransmitAsync(session).ConfigureAwait(false);
            }
        }
        catch (NbdProtocolException ex)
        {
            ConnectionLog.ProtocolViolation(_logger, Id, ex.Message);
        }
        catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException or OperationCanceledException or EndOfStreamException)
        {
            ConnectionLog.IoClosed(_logger, Id, ex.Message);
        }
        catch (Exception ex)
        {
            ConnectionLog.Unexpected(_logger, ex, Id);
        }
        finally
        {
            await _budget.WaitForNoneAsync().ConfigureAwait(false);
            ConnectionLog.Closed(_logger, Id);
        }
    }

    private Task TransmitAsync(NbdSession session)
    {
        // The transport has started, so the id of its thread (the only one that may block on the reply lock) is known.
        _replies = new ReplyWriter(_transport.Output, session.StructuredReplies, _transport.ThreadId, _transport.Socket);
        var dispatcher = new RequestDispatcher(Id, session.Export.Device, _replies, _budget, _buffers, Abort, _logger, _state.Metrics, _abort.Token);
        ConnectionLog.Transmission(_logger, Id, session.StructuredReplies);
        return new TransmissionLoop(_transport, session, _state, _replies, dispatcher, _budget).RunAsync(_abort.Token);
    }

    /// <summary>Asks an idle connection to end now; a busy one ends once its current requests are answered.</summary>
    public void BeginShutdown() => _transport.Input.CancelPendingRead();

    /// <summary>Closes the socket at once: pending reads and writes fail and the connection ends.</summary>
    public void Abort()
    {
        try
        {
            _abort.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // Already closed.
            return;
        }

        _transport.Abort();
    }

    public async ValueTask DisposeAsync()
    {
        // Every reply that will ever be sent has been flushed by now. Completing the writer with an exception keeps
        // it from trying to send leftovers to a peer that may be gone (which could throw or block).
        try
        {
            await _transport.Output.CompleteAsync(new ObjectDisposedException(nameof(NbdConnection))).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException or OperationCanceledException)
        {
            // The socket is being torn down anyway.
        }

        // A stopping server lingers less, so the shutdown timeout still bounds the stop.
        await _transport.CloseAsync(_state.IsStopping ? TimeSpan.FromMilliseconds(500) : TimeSpan.FromSeconds(2), _time).ConfigureAwait(false);
        _abort.Dispose();
    }
}
