using System.Net.Sockets;
using Swap.Daemon.Protocol;

namespace Swap.Slabs.Remote;

public sealed partial class DaemonLink
{
    /// <summary>
    /// Reads replies and completes their requests on this thread: the caller's continuation (the rest of the NBD
    /// request, up to its reply) runs here, which spares a thread hop per request. If a continuation blocks (an NBD
    /// client that stopped reading its replies, say), the watchdog hands the socket to a fresh receiver and this
    /// one leaves quietly when the continuation returns: a frame is always read whole before it is completed.
    /// </summary>
    private void ReceiveLoop(object? state)
    {
        var me = (Receiver)state!;
        var header = new byte[DaemonFrameHeader.Size];
        var body = new byte[DaemonStats.Size];
        byte[]? scratch = null;
        try
        {
            while (true)
            {
                ReceiveExact(_socket, header);
                DaemonFrameHeader.TryRead(header, out var frame);
                Volatile.Write(ref _lastActivity, _time.GetTimestamp());
                if (frame.Opcode == DaemonOpcode.Evicted)
                {
                    if (frame.RequestId != 0 || frame.BodyLength != SlabRange.SlabOnlySize)
                    {
                        DaemonProtocolException.Throw($"EVICTED notice with request id {frame.RequestId} and a {frame.BodyLength}-byte body");
                    }

                    ReceiveExact(_socket, body.AsSpan(0, SlabRange.SlabOnlySize));
                    var range = SlabRange.ReadSlabOnly(body);
                    Evicted?.Invoke(this, new SlabGrant(range.SlabId, range.Epoch));
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

                var reply = new DaemonReply(frame.Status, 0, default, default);
                if (frame.Status == DaemonStatus.Ok)
                {
                    switch (frame.Opcode)
                    {
                        case DaemonOpcode.Read:
                            ReceiveExact(_socket, slot.Destination.Span);
                            break;
                        case DaemonOpcode.QueryFree:
                            ReceiveExact(_socket, body.AsSpan(0, DaemonStats.FreeSlabsSize));
                            reply = reply with { FreeSlabs = DaemonStats.ReadFreeSlabs(body) };
                            break;
                        case DaemonOpcode.AllocSlab:
                            ReceiveExact(_socket, body.AsSpan(0, SlabGrant.Size));
                            reply = reply with { Grant = SlabGrant.Read(body) };
                            break;
                        case DaemonOpcode.Stats:
                            ReceiveExact(_socket, body.AsSpan(0, DaemonStats.Size));
                            var stats = DaemonStats.Read(body);
                            LastStats = stats;
                            reply = reply with { FreeSlabs = stats.FreeSlabs, Stats = stats };
                            break;
                    }
                }

                Volatile.Write(ref me.CompletingSince, _time.GetTimestamp());
                slot.Complete(reply);
                Volatile.Write(ref me.CompletingSince, 0);
                if (Volatile.Read(ref _receiver) != me)
                {
                    // Replaced while the continuation was blocked; the new receiver owns the socket now.
                    me.Replaced = true;
                    return;
                }
            }
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException or DaemonLinkException or DaemonProtocolException)
        {
            Kill(ex is DaemonProtocolException ? $"protocol violation: {ex.Message}" : ex.Message);
        }
        finally
        {
            if (!me.Replaced)
            {
                _watchdog.Dispose();
                var error = Dead();
                foreach (var slot in _slots)
                {
                    if (Volatile.Read(ref slot.Deadline) != 0 && slot.TryClaim())
                    {
                        slot.Fail(error);
                    }
                }

                _socket.Dispose();
                _completion.TrySetResult();
            }
        }
    }

    /// <summary>Starts a receive thread and makes it the one that owns the socket.</summary>
    private void StartReceiver()
    {
        var receiver = new Receiver(new Thread(ReceiveLoop) { IsBackground = true, Name = $"daemon {EndPoint}" });
        Volatile.Write(ref _receiver, receiver);
        receiver.Thread.UnsafeStart(receiver);
    }

    /// <summary>Called by the watchdog: a continuation blocked on the receive thread for too long gets the thread replaced.</summary>
    private void ReplaceReceiverIfStuck(long now)
    {
        var current = Volatile.Read(ref _receiver);
        var since = Volatile.Read(ref current!.CompletingSince);
        if (since != 0 && _time.GetElapsedTime(since, now) > StuckCompletion && Interlocked.CompareExchange(ref current.CompletingSince, 0, since) == since)
        {
            DaemonLinkLog.ReceiverReplaced(_logger, EndPoint.ToString() ?? "", StuckCompletion.TotalMilliseconds);
            StartReceiver();
        }
    }

    /// <summary>One receive thread and what the watchdog needs to know about it.</summary>
    private sealed class Receiver(Thread thread)
    {
        public Thread Thread { get; } = thread;

        /// <summary>When the running completion began, in timestamp ticks; 0 when none runs.</summary>
        public long CompletingSince;

        public bool Replaced { get; set; }
    }

    /// <summary>The slot a reply answers, after checking that the reply's shape fits the request.</summary>
    private DaemonRequest Match(DaemonFrameHeader frame)
    {
        var index = (int)(frame.RequestId & 0xFFFF);
        var slot = index < MaxInFlight ? _slots[index] : null;
        if (slot is null || Volatile.Read(ref slot.Deadline) == 0 || slot.RequestId != frame.RequestId || slot.Opcode != frame.Opcode)
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
            ReceiveExact(_socket, scratch.AsSpan(0, n));
            length -= n;
        }
    }
}
