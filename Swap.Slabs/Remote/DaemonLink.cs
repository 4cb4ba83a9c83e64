using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Swap.Daemon.Protocol;

namespace Swap.Slabs.Remote;

/// <summary>
/// One pipelined connection from the server to a donor daemon. Requests are sent from the caller's thread under a
/// lock (blocking sends, so the socket stays in blocking mode; small writes may wait for the next request, see
/// <see cref="WriteAsync"/>); one receive thread reads replies in any order and
/// completes pooled request slots, writing READ data straight into the caller's buffer. A watchdog on the injected
/// <see cref="TimeProvider"/> fails the whole link when a request outlives its timeout, and sends a STATS heartbeat
/// when the link is idle, so a stalled daemon is found before a swap-in needs it.
/// </summary>
public sealed partial class DaemonLink : IDisposable
{
    /// <summary>Requests in flight at most; more wait for a slot.</summary>
    public const int MaxInFlight = 1024;
    private const int SendBufferSize = 64 * 1024;

    /// <summary>Payloads up to this size are copied behind their header; larger ones are gathered by writev.</summary>
    private const int GatherThreshold = 16 * 1024;

    /// <summary>Deferred WRITE frames are held until this many bytes wait, or the next other request, or the watchdog's tick.</summary>
    private const int DeferLimit = 32 * 1024;

    /// <summary>A continuation running on the receive thread longer than this gets the thread replaced.</summary>
    private static readonly TimeSpan StuckCompletion = TimeSpan.FromMilliseconds(50);

    private readonly Socket _socket;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly DaemonLinkSettings _settings;
    private readonly long _timeoutTicks;
    private readonly DaemonRequest[] _slots = new DaemonRequest[MaxInFlight];
    private readonly int[] _free = new int[MaxInFlight];
    private readonly Lock _freeLock = new();
    private readonly SemaphoreSlim _capacity = new(MaxInFlight, MaxInFlight);
    private readonly Lock _sendLock = new();
    private readonly byte[] _sendBuffer = GC.AllocateArray<byte>(SendBufferSize, pinned: true);
    private Receiver? _receiver;
    private readonly ITimer _watchdog;
    private readonly TaskCompletionSource _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _freeCount;
    private long _sequence;
    private int _dead;
    private string _deathReason = "";
    private long _lastActivity;
    private int _heartbeatPending;

    /// <summary>Bytes of deferred frames at the start of the send buffer, not sent yet (under the send lock).</summary>
    private int _deferred;

    private DaemonLink(Socket socket, EndPoint endPoint, DaemonWelcome welcome, DaemonLinkSettings settings, TimeProvider time, ILogger logger)
    {
        _socket = socket;
        _time = time;
        _logger = logger;
        _settings = settings;
        EndPoint = endPoint;
        DaemonId = welcome.DaemonId;
        MaxSlabs = welcome.MaxSlabs;
        _timeoutTicks = (long)(settings.RequestTimeout.TotalSeconds * time.TimestampFrequency);
        for (var i = 0; i < MaxInFlight; i++)
        {
            _slots[i] = new DaemonRequest(this, i);
            _free[i] = MaxInFlight - 1 - i;
        }

        _freeCount = MaxInFlight;
        _lastActivity = time.GetTimestamp();
        var period = TimeSpan.FromTicks(Math.Max(TimeSpan.TicksPerMillisecond * 10, Math.Min(settings.RequestTimeout.Ticks, settings.HeartbeatInterval.Ticks) / 4));
        _watchdog = time.CreateTimer(static state => ((DaemonLink)state!).Watch(), this, period, period);
    }

    public EndPoint EndPoint { get; }

    /// <summary>The daemon's identity from its HELLO reply; a restarted daemon has a new one.</summary>
    public ulong DaemonId { get; }

    /// <summary>Most slabs the daemon will lend this server.</summary>
    public uint MaxSlabs { get; }

    public bool IsAlive => Volatile.Read(ref _dead) == 0;

    /// <summary>Bytes of deferred WRITE frames waiting in the send buffer: lets tests see a frame held back without sleeping.</summary>
    internal int DeferredBytes => Volatile.Read(ref _deferred);

    /// <summary>Why the link died; empty while it lives.</summary>
    public string DeathReason => Volatile.Read(ref _deathReason);

    /// <summary>The latest STATS the daemon answered (heartbeat or <see cref="StatsAsync"/>).</summary>
    public DaemonStats LastStats { get; private set; }

    /// <summary>Raised on the receive thread when the daemon evicts one of this server's slabs.</summary>
    public event Action<DaemonLink, SlabGrant>? Evicted;

    /// <summary>Completes once the link is dead and every pending request has failed.</summary>
    public Task Completion => _completion.Task;

    /// <summary>Connects, says HELLO and starts the receive thread. Cancelling closes the socket.</summary>
    public static async Task<DaemonLink> ConnectAsync(EndPoint endPoint, ulong clientId, DaemonLinkSettings settings,
        TimeProvider time, ILogger logger, CancellationToken cancellationToken)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await using (cancellationToken.Register(static s => ((Socket)s!).Dispose(), socket).ConfigureAwait(false))
            {
                // Blocking connect and HELLO on a pool thread: an async socket operation would leave the socket in
                // non-blocking mode for good, and every later blocking call would pay for emulation.
                var welcome = await Task.Run(() => Handshake(socket, endPoint, clientId, settings), cancellationToken).ConfigureAwait(false);
                socket.SendTimeout = (int)Math.Max(1, settings.RequestTimeout.TotalMilliseconds);
                var link = new DaemonLink(socket, endPoint, welcome, settings, time, logger);
                link.StartReceiver();
                return link;
            }
        }
        catch (Exception ex) when (ex is ObjectDisposedException || (ex is SocketException && cancellationToken.IsCancellationRequested))
        {
            socket.Dispose();
            throw new OperationCanceledException($"connecting to daemon {endPoint} was cancelled", ex, cancellationToken);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    private static DaemonWelcome Handshake(Socket socket, EndPoint endPoint, ulong clientId, DaemonLinkSettings settings)
    {
        socket.Connect(endPoint);
        socket.ReceiveTimeout = (int)Math.Max(1, settings.ConnectTimeout.TotalMilliseconds);
        Span<byte> frame = stackalloc byte[DaemonFrameHeader.Size + DaemonHello.Size];
        DaemonFrameHeader.For(DaemonOpcode.Hello, DaemonStatus.Ok, 1, DaemonHello.Size).Write(frame);
        new DaemonHello(DaemonFrameHeader.Version, clientId, DaemonHelloFlags.ReleaseSlabs).Write(frame[DaemonFrameHeader.Size..]);
        SocketGather.SendAll(socket, frame);
        Span<byte> header = stackalloc byte[DaemonFrameHeader.Size];
        ReceiveExact(socket, header);
        DaemonFrameHeader.TryRead(header, out var reply);
        if (reply.Opcode != DaemonOpcode.Hello || reply.RequestId != 1)
        {
            DaemonProtocolException.Throw($"expected the HELLO reply, got {reply.Opcode} for request {reply.RequestId}");
        }

        if (reply.Status != DaemonStatus.Ok)
        {
            if (reply.BodyLength != 0)
            {
                DaemonProtocolException.Throw($"HELLO refusal with a {reply.BodyLength}-byte body");
            }

            throw new DaemonLinkException($"daemon {endPoint} refused HELLO: {reply.Status}");
        }

        if (reply.BodyLength != DaemonWelcome.Size)
        {
            DaemonProtocolException.Throw($"HELLO reply body of {reply.BodyLength} bytes, expected {DaemonWelcome.Size}");
        }

        Span<byte> body = stackalloc byte[DaemonWelcome.Size];
        ReceiveExact(socket, body);
        var welcome = DaemonWelcome.Read(body);
        if (welcome.Version != DaemonFrameHeader.Version)
        {
            throw new DaemonLinkException($"daemon {endPoint} speaks version {welcome.Version}, this server {DaemonFrameHeader.Version}");
        }

        socket.ReceiveTimeout = 0;
        return welcome;
    }

    /// <summary>
    /// Sends a WRITE; <paramref name="data"/> is copied or on the wire (or in the socket buffer) when this returns, the
    /// reply comes in the result. With every request slot taken it blocks the caller until one frees up.
    /// </summary>
    /// <param name="defer">
    /// The caller does not wait for the reply to go on (the write is acknowledged already): a small frame may wait in
    /// the send buffer and leave with the next request, so the daemon wakes once for several. It leaves at the latest
    /// when <see cref="DeferLimit"/> bytes wait or at the watchdog's next tick. Frames keep their order either way.
    /// </param>
    public ValueTask<DaemonReply> WriteAsync(SlabGrant slab, long offset, ReadOnlySpan<byte> data, bool defer = false)
    {
        if (!IsAlive)
        {
            return ValueTask.FromException<DaemonReply>(Dead());
        }

        if (!_capacity.Wait(0) && !_capacity.Wait(_settings.RequestTimeout))
        {
            return ValueTask.FromException<DaemonReply>(NoSlotFreed());
        }

        return Send(DaemonOpcode.Write, new DaemonRequestBody(new SlabRange(slab.SlabId, slab.Epoch, (ulong)offset, (uint)data.Length), default, 0), data, default, defer);
    }

    /// <summary>Reads into <paramref name="destination"/>; on a non-OK status or an exception its contents are undefined.</summary>
    public ValueTask<DaemonReply> ReadAsync(SlabGrant slab, long offset, Memory<byte> destination) =>
        Issue(DaemonOpcode.Read, new DaemonRequestBody(new SlabRange(slab.SlabId, slab.Epoch, (ulong)offset, (uint)destination.Length), default, 0), destination);

    public ValueTask<DaemonReply> TrimAsync(SlabGrant slab, long offset, long length) =>
        Issue(DaemonOpcode.Trim, new DaemonRequestBody(new SlabRange(slab.SlabId, slab.Epoch, (ulong)offset, (uint)length), default, 0), default);

    public ValueTask<DaemonReply> FreeSlabAsync(SlabGrant slab) =>
        Issue(DaemonOpcode.FreeSlab, new DaemonRequestBody(new SlabRange(slab.SlabId, slab.Epoch, 0, 0), default, 0), default);

    public ValueTask<DaemonReply> QueryFreeAsync(long slabSize) =>
        Issue(DaemonOpcode.QueryFree, new DaemonRequestBody(default, default, (ulong)slabSize), default);

    public ValueTask<DaemonReply> AllocSlabAsync(long slabSize, int serverSlabIndex) =>
        Issue(DaemonOpcode.AllocSlab, new DaemonRequestBody(default, new SlabAllocRequest((ulong)slabSize, (uint)serverSlabIndex), 0), default);

    public ValueTask<DaemonReply> StatsAsync() => Issue(DaemonOpcode.Stats, default, default);

    /// <summary>Fails the link: pending and later requests throw <see cref="DaemonLinkException"/>.</summary>
    public void Kill(string reason)
    {
        if (Interlocked.CompareExchange(ref _dead, 1, 0) != 0)
        {
            return;
        }

        Volatile.Write(ref _deathReason, reason);
        DaemonLinkLog.LinkDown(_logger, EndPoint.ToString() ?? "", reason);
        try
        {
            _socket.Shutdown(SocketShutdown.Both);
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            // Already closed: the receive thread is on its way out.
        }
    }

    public void Dispose()
    {
        Kill("closed by the server");
        _watchdog.Dispose();
        var receiver = Volatile.Read(ref _receiver)?.Thread;
        if (receiver is not null && Thread.CurrentThread != receiver && receiver.IsAlive)
        {
            receiver.Join(TimeSpan.FromSeconds(2));
        }
    }

    internal void Release(DaemonRequest request)
    {
        lock (_freeLock)
        {
            _free[_freeCount++] = request.Index;
        }

        _capacity.Release();
    }

    private ValueTask<DaemonReply> Issue(DaemonOpcode opcode, DaemonRequestBody body, Memory<byte> destination)
    {
        if (!IsAlive)
        {
            return ValueTask.FromException<DaemonReply>(Dead());
        }

        return _capacity.Wait(0) ? Send(opcode, body, default, destination, defer: false) : IssueWhenFreeAsync(opcode, body, destination);
    }

    private async ValueTask<DaemonReply> IssueWhenFreeAsync(DaemonOpcode opcode, DaemonRequestBody body, Memory<byte> destination)
    {
        if (!await _capacity.WaitAsync(_settings.RequestTimeout).ConfigureAwait(false))
        {
            throw NoSlotFreed();
        }

        return await Send(opcode, body, default, destination, defer: false).ConfigureAwait(false);
    }

    /// <summary>Called holding a capacity unit: takes a slot, sends the frame, returns the slot's awaitable.</summary>
    private ValueTask<DaemonReply> Send(DaemonOpcode opcode, DaemonRequestBody body, ReadOnlySpan<byte> payload, Memory<byte> destination, bool defer)
    {
        DaemonRequest slot;
        lock (_freeLock)
        {
            slot = _slots[_free[--_freeCount]];
        }

        var task = slot.Task;
        slot.Begin((ulong)Interlocked.Increment(ref _sequence) & 0xFFFF_FFFF_FFFF, opcode, destination, _time.GetTimestamp() + _timeoutTicks);
        if (!IsAlive)
        {
            // The receive thread may have swept the slots before this one was taken: fail it here (the claim makes
            // sure only one side completes it).
            if (slot.TryClaim())
            {
                slot.Fail(Dead());
            }

            return task;
        }

        var bodyLength = DaemonRequestBody.Length(opcode);
        try
        {
            lock (_sendLock)
            {
                // Behind the frames deferred so far, which leave with this one: one send, one wake-up of the daemon.
                var start = _deferred;
                var frame = _sendBuffer.AsSpan(start);
                DaemonFrameHeader.For(opcode, DaemonStatus.Ok, slot.RequestId, bodyLength + payload.Length).Write(frame);
                body.Write(opcode, frame[DaemonFrameHeader.Size..]);
                var used = start + DaemonFrameHeader.Size + bodyLength;
                if (payload.Length <= GatherThreshold)
                {
                    payload.CopyTo(_sendBuffer.AsSpan(used));
                    used += payload.Length;
                    if (defer && used < DeferLimit)
                    {
                        _deferred = used;
                        return task;
                    }

                    _deferred = 0;
                    SocketGather.SendAll(_socket, _sendBuffer.AsSpan(0, used));
                }
                else
                {
                    _deferred = 0;
                    SocketGather.SendAll(_socket, _sendBuffer.AsSpan(0, used), payload);
                }
            }
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            // The receive thread fails every pending slot, this one included, once the socket is down.
            Kill($"send failed: {ex.Message}");
        }

        return task;
    }

    /// <summary>Every slot stayed taken for the request timeout: the daemon is not answering; fails the link.</summary>
    private DaemonLinkException NoSlotFreed()
    {
        Kill($"no request slot freed within {_settings.RequestTimeout.TotalMilliseconds} ms");
        return Dead();
    }

    private DaemonLinkException Dead() => new($"daemon {EndPoint} is unavailable: {DeathReason}");

    private static void ReceiveExact(Socket socket, Span<byte> destination)
    {
        while (!destination.IsEmpty)
        {
            var n = socket.Receive(destination);
            if (n == 0)
            {
                throw new DaemonLinkException("the daemon closed the connection");
            }

            destination = destination[n..];
        }
    }

    private void Watch()
    {
        if (!IsAlive)
        {
            return;
        }

        var now = _time.GetTimestamp();
        ReplaceReceiverIfStuck(now);
        SendDeferred();
        var pending = false;
        foreach (var slot in _slots)
        {
            var deadline = Volatile.Read(ref slot.Deadline);
            if (deadline != 0)
            {
                pending = true;
                if (now > deadline)
                {
                    Kill($"{slot.Opcode} request unanswered after {_settings.RequestTimeout.TotalMilliseconds} ms");
                    return;
                }
            }
        }

        var idle = _time.GetElapsedTime(Volatile.Read(ref _lastActivity), now);
        if (!pending && idle >= _settings.HeartbeatInterval && Interlocked.Exchange(ref _heartbeatPending, 1) == 0)
        {
            _ = HeartbeatAsync();
        }
    }

    /// <summary>Sends the deferred frames now, if any wait.</summary>
    private void SendDeferred()
    {
        try
        {
            lock (_sendLock)
            {
                if (_deferred > 0)
                {
                    var length = _deferred;
                    _deferred = 0;
                    SocketGather.SendAll(_socket, _sendBuffer.AsSpan(0, length));
                }
            }
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            Kill($"send failed: {ex.Message}");
        }
    }

    private async Task HeartbeatAsync()
    {
        try
        {
            await StatsAsync().ConfigureAwait(false);
        }
        catch (DaemonLinkException)
        {
            // The link is already down and reported.
        }
        finally
        {
            Volatile.Write(ref _heartbeatPending, 0);
        }
    }
}
