using System.Net.Sockets;
using Swap.Slabs.Wire;

namespace Swap.Slabs.Remote;

public sealed partial class DaemonLink
{
    private void ReceiveLoop()
    {
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

                if (frame.Status != DaemonStatus.Ok)
                {
                    slot.Complete(new DaemonReply(frame.Status, 0, default, default));
                    continue;
                }

                switch (frame.Opcode)
                {
                    case DaemonOpcode.Read:
                        ReceiveExact(_socket, slot.Destination.Span);
                        slot.Complete(new DaemonReply(DaemonStatus.Ok, 0, default, default));
                        break;
                    case DaemonOpcode.QueryFree:
                        ReceiveExact(_socket, body.AsSpan(0, DaemonStats.FreeSlabsSize));
                        slot.Complete(new DaemonReply(DaemonStatus.Ok, DaemonStats.ReadFreeSlabs(body), default, default));
                        break;
                    case DaemonOpcode.AllocSlab:
                        ReceiveExact(_socket, body.AsSpan(0, SlabGrant.Size));
                        slot.Complete(new DaemonReply(DaemonStatus.Ok, 0, SlabGrant.Read(body), default));
                        break;
                    case DaemonOpcode.Stats:
                        ReceiveExact(_socket, body.AsSpan(0, DaemonStats.Size));
                        var stats = DaemonStats.Read(body);
                        LastStats = stats;
                        slot.Complete(new DaemonReply(DaemonStatus.Ok, stats.FreeSlabs, default, stats));
                        break;
                    default:
                        slot.Complete(new DaemonReply(DaemonStatus.Ok, 0, default, default));
                        break;
                }
            }
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException or DaemonLinkException or DaemonProtocolException)
        {
            Kill(ex is DaemonProtocolException ? $"protocol violation: {ex.Message}" : ex.Message);
        }
        finally
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
