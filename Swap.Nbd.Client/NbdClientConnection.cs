using System.IO.Pipelines;
using System.Net.Sockets;
using Swap.Nbd.Protocol;

namespace Swap.Nbd.Client;

/// <summary>
/// One NBD connection in the transmission phase. Any number of callers may have requests in flight at once:
/// each gets a unique cookie, one send loop writes them in submission order, and one receive loop matches
/// replies (simple or structured, in any order) back to their requests.
/// </summary>
/// <remarks>
/// A READ's destination and a WRITE's payload must stay valid until the returned task completes. Cancellation is
/// observed only before a request is queued: a request on the wire cannot be withdrawn in NBD.
/// </remarks>
public sealed class NbdClientConnection : IAsyncDisposable
{
    private readonly Socket _socket;
    private readonly NetworkStream _stream;
    private readonly PipeReader _input;
    private readonly PipeWriter _output;
    private readonly NbdClientOptions _options;
    private readonly RequestPool _pool;
    private readonly PendingRequestTable _table = new();
    private readonly RequestSender _sender;
    private readonly ReplyReceiver _receiver;
    private readonly Task _sendLoop;
    private readonly Task _receiveLoop;

    private NbdClientConnection(NbdNegotiatedSocket negotiated, NbdClientOptions options)
    {
        _socket = negotiated.Socket;
        Negotiation = negotiated.Negotiation;
        _options = options;
        _pool = new RequestPool(options.InlineCompletions);
        _stream = new NetworkStream(_socket, ownsSocket: true);
        _input = PipeReader.Create(_stream, new StreamPipeReaderOptions(bufferSize: 64 * 1024, minimumReadSize: 16 * 1024, leaveOpen: true));
        _output = PipeWriter.Create(_stream, new StreamPipeWriterOptions(minimumBufferSize: 64 * 1024, leaveOpen: true));
        _sender = new RequestSender(_output, _table);
        _receiver = new ReplyReceiver(_input, new ReplyMatcher(_table, Negotiation));
        _sendLoop = Task.Run(SendLoopAsync);
        _receiveLoop = Task.Run(ReceiveLoopAsync);
    }

    public NbdNegotiation Negotiation { get; }
    public NbdExportInfo Export => Negotiation.Export;
    public long Size => Export.Size;
    public NbdTransmissionFlags TransmissionFlags => Export.Flags;
    public bool StructuredReplies => Negotiation.StructuredReplies;

    /// <summary>False once the connection has failed, been closed by the server, or been disconnected.</summary>
    public bool IsConnected => _table.IsOpen;

    /// <summary>Requests sent or queued whose replies have not arrived yet.</summary>
    public int InFlight => _table.Count;

    /// <summary>Connects, negotiates (see <see cref="NbdNegotiator.NegotiateAsync"/>) and starts transmission.</summary>
    public static async Task<NbdClientConnection> ConnectAsync(NbdUri uri, NbdClientOptions? options = null, CancellationToken ct = default)
    {
        options ??= new NbdClientOptions();
        var negotiated = await NbdNegotiator.NegotiateAsync(uri, options, ct).ConfigureAwait(false);
        return new NbdClientConnection(negotiated, options);
    }

    public static Task<NbdClientConnection> ConnectAsync(string uri, NbdClientOptions? options = null, CancellationToken ct = default) =>
        ConnectAsync(NbdUri.Parse(uri), options, ct);

    /// <summary>Takes over a socket that has finished negotiation.</summary>
    public static NbdClientConnection FromNegotiated(NbdNegotiatedSocket negotiated, NbdClientOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(negotiated);
        return new NbdClientConnection(negotiated, options ?? new NbdClientOptions());
    }

    /// <summary>NBD_CMD_READ of destination.Length bytes at offset.</summary>
    public ValueTask ReadAsync(long offset, Memory<byte> destination, CancellationToken ct = default)
    {
        CheckPayload(destination.Length);
        var request = Rent(NbdCommand.Read, NbdCommandFlags.None, offset, (uint)destination.Length);
        request.Destination = destination;
        return Submit(request, ct);
    }

    /// <summary>NBD_CMD_WRITE; with <paramref name="fua"/> the reply waits until the data is durable.</summary>
    public ValueTask WriteAsync(long offset, ReadOnlyMemory<byte> data, bool fua = false, CancellationToken ct = default)
    {
        CheckPayload(data.Length);
        var request = Rent(NbdCommand.Write, Fua(fua), offset, (uint)data.Length);
        request.Payload = data;
        return Submit(request, ct);
    }

    public ValueTask FlushAsync(CancellationToken ct = default)
    {
        Require(NbdTransmissionFlags.SendFlush, "FLUSH");
        return Submit(Rent(NbdCommand.Flush, NbdCommandFlags.None, 0, 0), ct);
    }

    public ValueTask TrimAsync(long offset, uint length, bool fua = false, CancellationToken ct = default)
    {
        Require(NbdTransmissionFlags.SendTrim, "TRIM");
        return Submit(Rent(NbdCommand.Trim, Fua(fua), offset, length), ct);
    }

    /// <summary>NBD_CMD_WRITE_ZEROES; <paramref name="noHole"/> asks for allocated zeroes, <paramref name="fastZero"/> to fail (ENOTSUP) rather than be slow.</summary>
    public ValueTask WriteZeroesAsync(long offset, uint length, bool noHole = false, bool fastZero = false, bool fua = false, CancellationToken ct = default)
    {
        Require(NbdTransmissionFlags.SendWriteZeroes, "WRITE_ZEROES");
        if (fastZero)
        {
            Require(NbdTransmissionFlags.SendFastZero, "FAST_ZERO");
        }

        var flags = Fua(fua) | (noHole ? NbdCommandFlags.NoHole : 0) | (fastZero ? NbdCommandFlags.FastZero : 0);
        return Submit(Rent(NbdCommand.WriteZeroes, flags, offset, length), ct);
    }

    public ValueTask CacheAsync(long offset, uint length, CancellationToken ct = default)
    {
        Require(NbdTransmissionFlags.SendCache, "CACHE");
        return Submit(Rent(NbdCommand.Cache, NbdCommandFlags.None, offset, length), ct);
    }

    /// <summary>
    /// NBD_CMD_BLOCK_STATUS for base:allocation. The extents run on from <paramref name="offset"/>; they may cover
    /// less than <paramref name="length"/> (ask again from where they end) or, unless <paramref name="reqOne"/>, a bit more.
    /// </summary>
    public async Task<IReadOnlyList<NbdExtent>> BlockStatusAsync(long offset, uint length, bool reqOne = false, CancellationToken ct = default)
    {
        if (Negotiation.BaseAllocationContextId is null)
        {
            throw new NotSupportedException("BLOCK_STATUS needs structured replies and the base:allocation context, which were not negotiated");
        }

        var extents = new List<NbdExtent>();
        var request = Rent(NbdCommand.BlockStatus, reqOne ? NbdCommandFlags.ReqOne : NbdCommandFlags.None, offset, length);
        request.Extents = extents;
        await Submit(request, ct).ConfigureAwait(false);
        return extents;
    }

    /// <summary>
    /// Sends NBD_CMD_DISC after everything already queued, waits (up to the disconnect timeout) for the server
    /// to answer what is outstanding and close, then closes the socket. Later requests fail.
    /// </summary>
    public async Task DisconnectAsync()
    {
        if (!_table.BeginDisconnect())
        {
            return;
        }

        _sender.QueueDisconnect();
        await _sendLoop.ConfigureAwait(false);
        try
        {
            await _receiveLoop.WaitAsync(_options.DisconnectTimeout, _options.TimeProvider).ConfigureAwait(false);
        }
        catch (TimeoutException ex)
        {
            Abort(new NbdConnectionClosedException("server did not close the connection after NBD_CMD_DISC", ex));
            await _receiveLoop.ConfigureAwait(false);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (!_table.HasFailed)
        {
            await DisconnectAsync().ConfigureAwait(false);
        }
        else
        {
            Abort(new NbdConnectionClosedException("connection disposed"));
        }

        await Task.WhenAll(_sendLoop, _receiveLoop).ConfigureAwait(false);
        await _input.CompleteAsync().ConfigureAwait(false);
        await _output.CompleteAsync().ConfigureAwait(false);
        await _stream.DisposeAsync().ConfigureAwait(false);
    }

    private PendingRequest Rent(NbdCommand command, NbdCommandFlags flags, long offset, uint length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        var request = _pool.Rent();
        request.Prepare(command, flags, (ulong)offset, length);
        return request;
    }

    private ValueTask Submit(PendingRequest request, CancellationToken ct)
    {
        if (ct.IsCancellationRequested)
        {
            request.Recycle();
            return ValueTask.FromCanceled(ct);
        }

        // Read before the request is in the table: from then on the receive loop may complete it (and the caller recycle it).
        var version = request.Version;
        if (_table.TryAdd(request) is { } refused)
        {
            request.Recycle();
            return ValueTask.FromException(refused);
        }

        // Cannot fail while the table took the request: the queue is only completed after the table records a
        // failure or a disconnect, and a request queued just before that is failed from the table.
        _sender.TryQueue(request);
        return new ValueTask(request, version);
    }

    private void CheckPayload(int length)
    {
        if ((uint)length > Export.MaximumPayload)
        {
            throw new ArgumentOutOfRangeException(nameof(length), length,
                $"request of {length} bytes exceeds the server's maximum payload of {Export.MaximumPayload}");
        }
    }

    private NbdCommandFlags Fua(bool fua)
    {
        if (fua)
        {
            Require(NbdTransmissionFlags.SendFua, "FUA");
        }

        return fua ? NbdCommandFlags.Fua : NbdCommandFlags.None;
    }

    private void Require(NbdTransmissionFlags flag, string what)
    {
        if (!Export.Flags.HasFlag(flag))
        {
            throw new NotSupportedException($"the server does not offer {what} (transmission flag {flag} is clear)");
        }
    }

    private async Task SendLoopAsync()
    {
        if (await _sender.RunAsync().ConfigureAwait(false) is { } error)
        {
            Abort(error);
        }
    }

    private async Task ReceiveLoopAsync() => EndReceiving(await _receiver.RunAsync().ConfigureAwait(false));

    /// <summary>Ends the connection once the receive loop has stopped: every request still pending fails.</summary>
    private void EndReceiving(Exception? error)
    {
        var reason = _table.Close(error, out var orphans);
        if (error is not null)
        {
            Abort(error);
        }
        else
        {
            _sender.Complete();
        }

        var message = reason is NbdProtocolException
            ? $"connection closed: server violated the NBD protocol: {reason.Message}"
            : $"connection closed: {reason.Message}";
        foreach (var request in orphans)
        {
            request.Fail(new NbdConnectionClosedException(message, reason));
        }
    }

    /// <summary>Records why the connection ends and closes the socket; the receive loop then fails what is pending.</summary>
    private void Abort(Exception reason)
    {
        _table.Fail(reason);

        try
        {
            _socket.Shutdown(SocketShutdown.Both);
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            // Already closed.
        }

        _input.CancelPendingRead();
        _sender.Complete();
    }
}
