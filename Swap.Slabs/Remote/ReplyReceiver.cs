using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Swap.Daemon.Protocol;

namespace Swap.Slabs.Remote;

/// <summary>
/// The receiving half of a <see cref="DaemonLink"/>: one thread reads replies in any order and completes their
/// request slots on itself, writing READ data straight into the caller's buffer; the caller's continuation (the rest
/// of the NBD request, up to its reply) runs there too, which spares a thread hop per request. If a continuation
/// blocks (an NBD client that stopped reading its replies, say), <see cref="ReplaceIfStuck"/> hands the socket to a
/// fresh thread and the old one leaves quietly when the continuation returns: a frame is always read whole before it
/// is completed. The last thread to leave ends the link.
/// </summary>
internal sealed class ReplyReceiver
{
    /// <summary>A continuation running on the receive thread longer than this gets the thread replaced.</summary>
    private static readonly TimeSpan StuckCompletion = TimeSpan.FromMilliseconds(50);

    private readonly DaemonLink _link;
    private readonly Socket _socket;
    private readonly RequestSlotPool _pool;
    private readonly ReadLatency _readLatency;
    private readonly long _timeoutTicks;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private ReceiveThread? _current;
    private long _lastActivity;

    /// <param name="readLatency">Where each OK READ's time from send to reply goes.</param>
    /// <param name="timeoutTicks">The request timeout: a slot's deadline minus this is when it was sent.</param>
    public ReplyReceiver(DaemonLink link, Socket socket, RequestSlotPool pool, ReadLatency readLatency, long timeoutTicks, TimeProvider time, ILogger logger)
    {
        _link = link;
        _socket = socket;
        _pool = pool;
        _readLatency = readLatency;
        _timeoutTicks = timeoutTicks;
        _time = time;
        _logger = logger;
        _lastActivity = time.GetTimestamp();
    }

    /// <summary>When the last frame came in (or the link started), in timestamp ticks.</summary>
    public long LastActivity => Volatile.Read(ref _lastActivity);

    /// <summary>The latest STATS the daemon answered.</summary>
    public DaemonStats LastStats { get; private set; }

    /// <summary>The thread that owns the socket now, once started.</summary>
    public Thread? CurrentThread => Volatile.Read(ref _current)?.Thread;

    /// <summary>Starts a receive thread and makes it the one that owns the socket.</summary>
    public void Start()
    {
        var receiver = new ReceiveThread(new Thread(ReceiveLoop) { IsBackground = true, Name = $"daemon {_link.EndPoint}" });
        Volatile.Write(ref _current, receiver);
        receiver.Thread.UnsafeStart(receiver);
    }

    /// <summary>Called by the watchdog: a continuation blocked on the receive thread for too long gets the thread replaced.</summary>
    public void ReplaceIfStuck(long now)
    {
        var current = Volatile.Read(ref _current);
        var since = Volatile.Read(ref current!.CompletingSince);
        if (since != 0 && _time.GetElapsedTime(since, now) > StuckCompletion && Interlocked.CompareExchange(ref current.CompletingSince, 0, since) == since)
        {
            DaemonLinkLog.ReceiverReplaced(_logger, _link.EndPoint.ToString() ?? "", StuckCompletion.TotalMilliseconds);
            Start();
        }
    }

    private void ReceiveLoop(object? state)
    {
        Swap.Common.Hosting.StackPrefault.Touch();
        var me = (ReceiveThread)state!;
        var header = new byte[DaemonFrameHeader.Size];
        var body = new byte[DaemonStats.Size];
        byte[]? scratch = null;
        DaemonRequest? claimed = null;
        try
        {
            while (true)
            {
                SocketReceive.Exact(_socket, header);
                DaemonFrameHeader.TryRead(header, out var frame);
                var arrived = _time.GetTimestamp();
                Volatile.Write(ref _lastActivity, arrived);
                if (frame.Opcode == DaemonOpcode.Evicted)
                {
                    if (frame.RequestId != 0 || frame.BodyLength != SlabRange.SlabOnlySize)
                    {
                        DaemonProtocolException.Throw($"EVICTED notice with request id {frame.RequestId} and a {frame.BodyLength}-byte body");
                    }

                    SocketReceive.Exact(_socket, body.AsSpan(0, SlabRange.SlabOnlySize));
                    var range = SlabRange.ReadSlabOnly(body);
                    _link.RaiseEvicted(new SlabGrant(range.SlabId, range.Epoch));
                    continue;
                }

                var slot = Match(frame);
                if (!slot.TryClaim())
                {
                    // Failed on the send side already; read the body past.
                    scratch ??= new byte[64 * 1024];
                    Drain(frame.BodyLength, scratch);
                    continue;
                }

                // Ours to complete from here: if the socket fails before the reply is read whole, the catch below
                // fails it (nobody else may, and its caller would wait forever).
                claimed = slot;
                var reply = new DaemonReply(frame.Status, 0, default, default);
                if (frame.Status == DaemonStatus.Ok)
                {
                    switch (frame.Opcode)
                    {
                        case DaemonOpcode.Read:
                            // Late replies to hedged reads count too: they are this link's real latency.
                            _readLatency.Record(arrived - (Volatile.Read(ref slot.Deadline) - _timeoutTicks));
                            SocketReceive.Exact(_socket, slot.Destination.Span);
                            break;
                        case DaemonOpcode.QueryFree:
                            SocketReceive.Exact(_socket, body.AsSpan(0, DaemonStats.FreeSlabsSize));
                            reply = reply with { FreeSlabs = DaemonStats.ReadFreeSlabs(body) };
                            break;
                        case DaemonOpcode.AllocSlab:
                            SocketReceive.Exact(_socket, body.AsSpan(0, SlabGrant.Size));
                            reply = reply with { Grant = SlabGrant.Read(body) };
                            break;
                        case DaemonOpcode.Stats:
                            SocketReceive.Exact(_socket, body.AsSpan(0, DaemonStats.Size));
                            var stats = DaemonStats.Read(body);
                            LastStats = stats;
                            reply = reply with { FreeSlabs = stats.FreeSlabs, Stats = stats };
                            break;
                    }
                }

                claimed = null;
                var completing = Math.Max(1, _time.GetTimestamp());
                Volatile.Write(ref me.CompletingSince, completing);
                slot.Complete(reply);
                // Whoever clears CompletingSince first decides: this thread reads on, or the watchdog has taken it to
                // start a replacement (which may not be _current yet), and this thread must not read the socket again.
                if (Interlocked.CompareExchange(ref me.CompletingSince, 0, completing) != completing)
                {
                    // The watchdog took the socket from this thread while the continuation was blocked (its CAS to 0
                    // came first): a new receiver owns it, or is about to, so this one must not read another byte.
                    me.Replaced = true;
                    return;
                }
            }
        }
        catch (Exception ex)
        {
            // Socket and protocol failures are expected; anything else is a bug, but it must not leave the link half
            // alive (its requests unanswered, with nobody left to fail them): the link dies the same way.
            _link.Kill(ex switch
            {
                DaemonProtocolException => $"protocol violation: {ex.Message}",
                SocketException or ObjectDisposedException or DaemonLinkException => ex.Message,
                _ => $"receive thread failed: {ex}",
            });
            claimed?.Fail(new DaemonLinkException($"link to {_link.EndPoint} failed while its reply was read: {ex.Message}"));
        }
        finally
        {
            if (!me.Replaced)
            {
                _link.Ended();
            }
        }
    }

    /// <summary>The slot a reply answers, after checking that the reply's shape fits the request.</summary>
    private DaemonRequest Match(DaemonFrameHeader frame)
    {
        var slot = _pool.Pending(frame.RequestId);
        if (slot is null || slot.Opcode != frame.Opcode)
        {
            DaemonProtocolException.Throw($"{frame.Opcode} reply to request {frame.RequestId}, which is not pending");
        }

        if (frame.Status > DaemonStatus.HelloFirst)
        {
            DaemonProtocolException.Throw($"unknown status {(ushort)frame.Status}");
        }

        var expected = frame.Status != DaemonStatus.Ok ? 0 : frame.Opcode switch
        {
            DaemonOpcode.Read => slot.Destination.Length,
            DaemonOpcode.QueryFree => DaemonStats.FreeSlabsSize,
            DaemonOpcode.AllocSlab => SlabGrant.Size,
            DaemonOpcode.Stats => DaemonStats.Size,
            _ => 0,
        };
        if (frame.BodyLength != expected)
        {
            DaemonProtocolException.Throw($"{frame.Opcode} reply with a {frame.BodyLength}-byte body, expected {expected}");
        }

        return slot;
    }

    private void Drain(int length, byte[] scratch)
    {
        while (length > 0)
        {
            var n = Math.Min(length, scratch.Length);
            SocketReceive.Exact(_socket, scratch.AsSpan(0, n));
            length -= n;
        }
    }

    /// <summary>One receive thread and what the watchdog needs to know about it.</summary>
    private sealed class ReceiveThread(Thread thread)
    {
        public Thread Thread { get; } = thread;

        /// <summary>When the running completion began, in timestamp ticks; 0 when none runs.</summary>
        public long CompletingSince;

        public bool Replaced { get; set; }
    }
}
