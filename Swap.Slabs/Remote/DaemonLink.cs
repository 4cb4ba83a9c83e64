using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Swap.Daemon.Protocol;

namespace Swap.Slabs.Remote;

/// <summary>
/// One pipelined connection from the server to a donor daemon, the face the slab layer talks to. Requests take a
/// pooled slot (<see cref="RequestSlotPool"/>) and are sent from the caller's thread (<see cref="FrameSender"/>;
/// small writes may wait for the next request, see <see cref="WriteAsync"/>); one receive thread reads replies in any
/// order and completes the slots (<see cref="ReplyReceiver"/>); a watchdog on the injected <see cref="TimeProvider"/>
/// fails the whole link when a request outlives its timeout and sends a STATS heartbeat when the link is idle
/// (<see cref="LinkWatchdog"/>).
/// </summary>
public sealed class DaemonLink : IDisposable
{
    /// <summary>Requests in flight at most; more wait for a slot.</summary>
    public const int MaxInFlight = 1024;

    private readonly Socket _socket;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly DaemonLinkSettings _settings;
    private readonly long _timeoutTicks;
    private readonly RequestSlotPool _slots = new(MaxInFlight);
    private readonly FrameSender _sender;
    private readonly ReplyReceiver _receiver;
    private readonly LinkWatchdog _watchdog;
    private readonly TaskCompletionSource _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _dead;
    private string _deathReason = "";

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
        _sender = new FrameSender(socket);
        ReadLatency = new ReadLatency(time.TimestampFrequency);
        _receiver = new ReplyReceiver(this, socket, _slots, ReadLatency, _timeoutTicks, time, logger);
        _watchdog = new LinkWatchdog(this, _slots, _sender, _receiver, settings, time);
        WriteBehind = new WriteBehind(this, settings.WriteBehindBytes);
    }

    public EndPoint EndPoint { get; }

    /// <summary>Acknowledged writes waiting for this link's send thread (see <see cref="Remote.WriteBehind"/>).</summary>
    public WriteBehind WriteBehind { get; }

    /// <summary>The daemon's identity from its HELLO reply; a restarted daemon has a new one.</summary>
    public ulong DaemonId { get; }

    /// <summary>Most slabs the daemon will lend this server.</summary>
    public uint MaxSlabs { get; }

    public bool IsAlive => Volatile.Read(ref _dead) == 0;

    /// <summary>How long this daemon's READs have taken lately: what the hedging bound of its reads is made of.</summary>
    internal ReadLatency ReadLatency { get; }

    /// <summary>Bytes of deferred WRITE frames waiting in the send buffer: lets tests see a frame held back without sleeping.</summary>
    internal int DeferredBytes => _sender.DeferredBytes;

    /// <summary>Why the link died; empty while it lives.</summary>
    public string DeathReason => Volatile.Read(ref _deathReason);

    /// <summary>The latest STATS the daemon answered (heartbeat or <see cref="StatsAsync"/>).</summary>
    public DaemonStats LastStats => _receiver.LastStats;

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
                var welcome = await Task.Run(() => DaemonLinkHandshake.Run(socket, endPoint, clientId, settings), cancellationToken).ConfigureAwait(false);
                socket.SendTimeout = (int)Math.Max(1, settings.RequestTimeout.TotalMilliseconds);
                var link = new DaemonLink(socket, endPoint, welcome, settings, time, logger);
                link._receiver.Start();
                link.WriteBehind.Start();
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

    /// <summary>
    /// Sends a WRITE; <paramref name="data"/> is copied or on the wire (or in the socket buffer) when this returns, the
    /// reply comes in the result. With every request slot taken it blocks the caller until one frees up.
    /// </summary>
    /// <param name="defer">
    /// The caller does not wait for the reply to go on (the write is acknowledged already): a small frame may wait in
    /// the send buffer and leave with the next request, so the daemon wakes once for several. It leaves at the latest
    /// when <see cref="FrameSender.DeferLimit"/> bytes wait or at the watchdog's next tick. Frames keep their order either way.
    /// </param>
    public ValueTask<DaemonReply> WriteAsync(SlabGrant slab, long offset, ReadOnlySpan<byte> data, bool defer = false)
    {
        if (!IsAlive)
        {
            return ValueTask.FromException<DaemonReply>(Dead());
        }

        if (!_slots.TryReserve() && !_slots.Reserve(_settings.RequestTimeout))
        {
            return ValueTask.FromException<DaemonReply>(NoSlotFreed());
        }

        return Send(DaemonOpcode.Write, new DaemonRequestBody(new SlabRange(slab.SlabId, slab.Epoch, (ulong)offset, (uint)data.Length), default, 0), data, default, defer);
    }

    /// <summary>
    /// Sends a WRITE from the <see cref="WriteBehind"/> queue, on its send thread: waits for a request slot (up to the
    /// request timeout) and on the socket as long as it must; <paramref name="queued"/> hears when the frame has its
    /// place in the order.
    /// </summary>
    internal ValueTask<DaemonReply> SendQueuedWrite(SlabGrant slab, long offset, ReadOnlySpan<byte> data, bool defer, IQueuedWrite queued)
    {
        if (!IsAlive)
        {
            return ValueTask.FromException<DaemonReply>(Dead());
        }

        if (!_slots.TryReserve() && !_slots.Reserve(_settings.RequestTimeout))
        {
            return ValueTask.FromException<DaemonReply>(NoSlotFreed());
        }

        return Send(DaemonOpcode.Write, new DaemonRequestBody(new SlabRange(slab.SlabId, slab.Epoch, (ulong)offset, (uint)data.Length), default, 0), data, default, defer, queued);
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
        WriteBehind.Wake();
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
        WriteBehind.Dispose();
        var receiver = _receiver.CurrentThread;
        if (receiver is not null && Thread.CurrentThread != receiver && receiver.IsAlive)
        {
            receiver.Join(TimeSpan.FromSeconds(2));
        }
    }

    /// <summary>Called on the receive thread for an EVICTED notice.</summary>
    internal void RaiseEvicted(SlabGrant grant) => Evicted?.Invoke(this, grant);

    /// <summary>Called by the last receive thread as it leaves: fails what is pending, closes the socket, completes.</summary>
    internal void Ended()
    {
        // Dead before the slots are swept: a send that starts after the sweep must see it and fail its own slot.
        Kill("the receive thread ended");
        _watchdog.Dispose();
        _slots.FailPending(Dead());
        _socket.Dispose();
        _completion.TrySetResult();
    }

    private ValueTask<DaemonReply> Issue(DaemonOpcode opcode, DaemonRequestBody body, Memory<byte> destination)
    {
        if (!IsAlive)
        {
            return ValueTask.FromException<DaemonReply>(Dead());
        }

        return _slots.TryReserve() ? Send(opcode, body, default, destination, defer: false) : IssueWhenFreeAsync(opcode, body, destination);
    }

    private async ValueTask<DaemonReply> IssueWhenFreeAsync(DaemonOpcode opcode, DaemonRequestBody body, Memory<byte> destination)
    {
        if (!await _slots.ReserveAsync(_settings.RequestTimeout).ConfigureAwait(false))
        {
            throw NoSlotFreed();
        }

        return await Send(opcode, body, default, destination, defer: false).ConfigureAwait(false);
    }

    /// <summary>Called holding a capacity unit: takes a slot, sends the frame, returns the slot's awaitable.</summary>
    private ValueTask<DaemonReply> Send(DaemonOpcode opcode, DaemonRequestBody body, ReadOnlySpan<byte> payload, Memory<byte> destination, bool defer, IQueuedWrite? queued = null)
    {
        var slot = _slots.Take();
        var task = slot.Task;
        slot.Begin(_slots.NextSequence(), opcode, destination, _time.GetTimestamp() + _timeoutTicks);
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

        try
        {
            _sender.Send(opcode, slot.RequestId, body, payload, defer, queued);
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            // The receive thread fails every pending slot once the socket is down; but it may have done so already
            // (a disposed socket means it has), so this one is failed here unless the receive thread claimed it.
            Kill($"send failed: {ex.Message}");
            if (slot.TryClaim())
            {
                slot.Fail(Dead());
            }
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
}
