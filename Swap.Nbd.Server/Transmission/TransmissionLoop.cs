using System.Buffers;
using System.IO.Pipelines;
using Swap.Nbd.Protocol;
using Swap.Nbd.Server.Transport;

namespace Swap.Nbd.Server.Transmission;

/// <summary>
/// The transmission phase of one connection: frames requests out of the input, checks each with
/// <see cref="RequestValidator"/>, enforces the payload limit before waiting for a WRITE's payload, and hands valid
/// requests to the <see cref="RequestDispatcher"/> (many in flight; replies leave through the <see cref="ReplyWriter"/>).
/// </summary>
internal sealed class TransmissionLoop
{
    /// <summary>An invalid WRITE's payload up to this size is read and dropped; a larger one closes the connection.</summary>
    internal const long MaxSkippablePayload = 128L * 1024 * 1024;

    private readonly SocketTransport _transport;
    private readonly PipeReader _input;
    private readonly NbdSession _session;
    private readonly NbdServerState _state;
    private readonly ReplyWriter _replies;
    private readonly RequestDispatcher _dispatcher;
    private readonly InFlightBudget _budget;
    private readonly NbdTransmissionFlags _flags;
    private long _discardRemaining;
    private NbdRequest _discardRequest;
    private NbdError _discardError;

    public TransmissionLoop(SocketTransport transport, NbdSession session, NbdServerState state, ReplyWriter replies,
        RequestDispatcher dispatcher, InFlightBudget budget)
    {
        _transport = transport;
        _input = transport.Input;
        _session = session;
        _state = state;
        _replies = replies;
        _dispatcher = dispatcher;
        _budget = budget;
        // Fixed from here on; computed once so the per-request checks are plain bit tests.
        _flags = session.Export.FlagsFor(session.StructuredReplies);
    }

    /// <summary>Serves requests until the client disconnects or closes, or the server stops and the client is idle.</summary>
    public async Task RunAsync(CancellationToken ct)
    {
        var device = _session.Export.Device;
        var headerBytes = new byte[NbdRequest.Size];
        while (true)
        {
            var result = await _input.ReadAsync(ct).ConfigureAwait(false);
            var buffer = result.Buffer;
            var replied = false;
            var disconnect = false;
            try
            {
                while (true)
                {
                    if (_discardRemaining > 0)
                    {
                        var n = Math.Min(_discardRemaining, buffer.Length);
                        buffer = buffer.Slice(n);
                        _discardRemaining -= n;
                        if (_discardRemaining > 0)
                        {
                            break;
                        }

                        await _replies.ReplyAsync(_discardRequest, _discardError, ct).ConfigureAwait(false);
                        replied = true;
                    }

                    if (buffer.Length < NbdRequest.Size)
                    {
                        break;
                    }

                    buffer.Slice(0, NbdRequest.Size).CopyTo(headerBytes);
                    NbdRequest.TryRead(headerBytes, out var request);
                    var error = RequestValidator.Validate(request, _flags, _session.StructuredReplies, _session.MetaContextSelected,
                        (ulong)device.Size, (ulong)device.MinimumBlockSize);
                    if (request.Command == NbdCommand.Write)
                    {
                        if (error != NbdError.None)
                        {
                            if (request.Length > MaxSkippablePayload)
                            {
                                NbdProtocolException.Throw($"WRITE with a {request.Length}-byte payload");
                            }

                            buffer = buffer.Slice(NbdRequest.Size);
                            (_discardRemaining, _discardRequest, _discardError) = (request.Length, request, error);
                            if (request.Length == 0)
                            {
                                await _replies.ReplyAsync(request, error, ct).ConfigureAwait(false);
                                replied = true;
                            }

                            continue;
                        }

                        if (buffer.Length < NbdRequest.Size + request.Length)
                        {
                            break;
                        }
                    }

                    buffer = buffer.Slice(NbdRequest.Size);
                    if (request.Command == NbdCommand.Disconnect)
                    {
                        disconnect = true;
                        break;
                    }

                    var payload = request.Command == NbdCommand.Write ? buffer.Slice(0, request.Length) : default;
                    buffer = buffer.Slice(payload.Length);
                    if (error == NbdError.None && _state.IsStopping)
                    {
                        error = NbdError.Shutdown;
                    }

                    if (error == NbdError.None && request.Command == NbdCommand.Write && _dispatcher.TryHoldWrite(request, payload))
                    {
                        // Answered with the WRITEs after it in this buffer, their disk writes in flight together.
                        continue;
                    }

                    replied |= await _dispatcher.FlushWritesAsync(ct).ConfigureAwait(false);
                    if (error != NbdError.None)
                    {
                        await _replies.ReplyAsync(request, error, ct).ConfigureAwait(false);
                    }
                    else
                    {
                        await _dispatcher.DispatchAsync(request, payload, ct).ConfigureAwait(false);
                    }

                    replied = true;
                }

                // Before the input moves on: the held WRITEs' payloads are in it.
                replied |= await _dispatcher.FlushWritesAsync(ct).ConfigureAwait(false);
            }
            finally
            {
                _input.AdvanceTo(buffer.Start, buffer.End);
            }

            if (replied)
            {
                await _replies.FlushRepliesAsync(ct).ConfigureAwait(false);
            }

            // Stopping: whatever the client has already sent is still read and answered (ESHUTDOWN for new
            // requests); the connection ends once nothing more is waiting.
            if (disconnect || result.IsCompleted || (_state.IsStopping && buffer.IsEmpty && _transport.Available == 0))
            {
                break;
            }
        }

        await _budget.WaitForNoneAsync().ConfigureAwait(false);
        await _replies.FlushRepliesAsync(ct).ConfigureAwait(false);
    }
}
