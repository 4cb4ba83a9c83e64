using System.IO.Pipelines;
using System.Net.Sockets;
using System.Threading.Channels;
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
public sealed partial class NbdClientConnection : IAsyncDisposable
{
    private readonly Socket _socket;
    private readonly NetworkStream _stream;
    private readonly PipeReader _input;
    private readonly PipeWriter _output;
    private readonly NbdClientOptions _options;
    private readonly RequestPool _pool;
    private readonly Channel<PendingRequest> _requests;
    private readonly Lock _lock = new();
    private readonly Dictionary<ulong, PendingRequest> _pending = [];
    private readonly Task _sendLoop;
    private readonly Task _receiveLoop;
    private ulong _nextCookie;
    private bool _disconnecting;
    private Exception? _failure;

    private NbdClientConnection(NbdNegotiatedSocket negotiated, NbdClientOptions options)
    {
        _socket = negotiated.Socket;
        Negotiation = negotiated.Negotiation;
        _options = options;
        _pool = new RequestPool(options.InlineCompletions);
        _stream = new NetworkStream(_socket, ownsSocket: true);
        _input = PipeReader.Create(_stream, new StreamPipeReaderOptions(bufferSize: 64 * 1024, minimumReadSize: 16 * 1024, leaveOpen: true));
        _output = PipeWriter.Create(_stream, new StreamPipeWriterOptions(minimumBufferSize: 64 * 1024, leaveOpen: true));
        _requests = Channel.CreateUnbounded<PendingRequest>(new UnboundedChannelOptions { SingleReader = true });
        _sendLoop = Task.Run(SendLoopAsync);
        _receiveLoop = Task.Run(ReceiveLoopAsync);
    }

    public NbdNegotiation Negotiation { get; }
    public NbdExportInfo Export => Negotiation.Export;
    public long Size => Export.Size;
    public NbdTransmissionFlags TransmissionFlags => Export.Flags;
    public bool StructuredReplies => Negotiation.StructuredReplies;

    /// <summary>False once the connection has failed, been closed by the server, or been disconnected.</summary>
    public bool IsConnected
    {
        get
        {
            lock (_lock)
            {
                return _failure is null && !_disconnecting;
            }
        }
    }

    /// <summary>Requests sent or queued whose replies have not arrived yet.</summary>
    public int InFlight
    {
        get
        {
            lock (_lock)
            {
                return _pending.Count;
            }
        }
    }

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
        lock (_lock)
        {
            if (_disconnecting)
            {
                return;
            }

            _disconnecting = true;
        }

        _requests.Writer.TryWrite(DisconnectMarker);
        _requests.Writer.TryComplete();
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
        bool healthy;
        lock (_lock)
        {
            healthy = _failure is null;
        }

        if (healthy)
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

        short version;
        lock (_lock)
        {
            if (_failure is not null || _disconnecting)
            {
                request.Recycle();
                return ValueTask.FromException(_failure is not null
                    ? new NbdConnectionClosedException($"connection is closed: {_failure.Message}", _failure)
                    : new NbdConnectionClosedException("connection is disconnecting"));
            }

            request.Cookie = ++_nextCookie;
            version = request.Version;
            _pending.Add(request.Cookie, request);
        }

        // Cannot fail while the lock above saw the connection open: the writer is only completed after
        // _failure/_disconnecting are set, and a request queued just before that is failed from _pending.
        _requests.Writer.TryWrite(request);
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

    /// <summary>Records why the connection ends and closes the socket; the receive loop then fails what is pending.</summary>
    private void Abort(Exception reason)
    {
        lock (_lock)
        {
            _failure ??= reason;
        }

        try
        {
            _socket.Shutdown(SocketShutdown.Both);
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            // Already closed.
        }

        _input.CancelPendingRead();
        _requests.Writer.TryComplete();
    }
}
