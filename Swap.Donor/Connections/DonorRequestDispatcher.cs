using Microsoft.Extensions.Logging;
using Swap.BlockDevices;
using Swap.Daemon.Protocol;
using Swap.Donor.Slabs;

namespace Swap.Donor.Connections;

/// <summary>
/// Answers one connection's requests in order, on its receive thread: HELLO and AUTH go to the connection's
/// <see cref="DonorHandshake"/> (which binds the client), the lending requests to the daemon's lender, READ/WRITE/TRIM
/// to slab memory under a reference on the slab. Requests and reply bodies share one pinned frame buffer; nothing is
/// allocated per request.
/// </summary>
internal sealed class DonorRequestDispatcher(DonorConnection connection, DonorDaemon daemon, DonorReceiver receiver, DonorReplyBatcher replies,
    DonorHandshake handshake, ILogger logger)
{
    private const int ReplyBody = DaemonFrameHeader.Size; // reply bodies are built at this offset in the frame buffer

    private readonly byte[] _frame = GC.AllocateUninitializedArray<byte>(DonorConnection.BufferSize, pinned: true);

    /// <summary>Reads and answers one request; false at a clean end of stream or after a refusal that ends the connection.</summary>
    public bool ServeOne()
    {
        if (!receiver.ReadRequest(_frame, out var header))
        {
            return false;
        }

        var body = _frame.AsSpan(DaemonFrameHeader.Size);
        switch (header.Opcode)
        {
            case DaemonOpcode.Hello:
                // The receiver read at most a version 2 body; a wrong magic throws: not one of ours, close.
                return Answer(header, handshake.Hello(body[..Math.Min(header.BodyLength, DaemonHello.Size)], header.BodyLength, _frame.AsSpan(ReplyBody)));
            case DaemonOpcode.Auth:
                return Answer(header, handshake.Auth(body[..DaemonAuthProof.AuthBodySize], header.BodyLength));
        }

        if (!handshake.IsDone || connection.Client is not { } client)
        {
            // Nothing is read of a WRITE's payload: the connection closes after the refusal.
            return Answer(header, handshake.Early(header.Opcode));
        }

        if (header.Opcode == DaemonOpcode.Write)
        {
            ServeWrite(header);
            return true;
        }

        var lender = daemon.Lender;
        switch (header.Opcode)
        {
            case DaemonOpcode.QueryFree:
            {
                var status = lender.QueryFree(client, SlabQuery.Read(body).SlabSize, out var free);
                if (status == DaemonStatus.Ok)
                {
                    DaemonStats.WriteFreeSlabs(_frame.AsSpan(ReplyBody), free);
                    Reply(header.Opcode, status, header.RequestId, DaemonStats.FreeSlabsSize);
                }
                else
                {
                    Reply(header.Opcode, status, header.RequestId, 0);
                }

                break;
            }

            case DaemonOpcode.AllocSlab:
            {
                var request = SlabAllocRequest.Read(body);
                var status = lender.Allocate(client, request, out var grant);
                if (status == DaemonStatus.Ok)
                {
                    grant.Write(_frame.AsSpan(ReplyBody));
                    Reply(header.Opcode, status, header.RequestId, SlabGrant.Size);
                }
                else
                {
                    Reply(header.Opcode, status, header.RequestId, 0);
                }

                break;
            }

            case DaemonOpcode.Read:
                ServeRead(header.RequestId, SlabRange.Read(body));
                break;

            case DaemonOpcode.Trim:
                ServeTrim(header.RequestId, SlabRange.Read(body));
                break;

            case DaemonOpcode.FreeSlab:
                Reply(header.Opcode, lender.FreeSlab(client, SlabRange.ReadSlabOnly(body)), header.RequestId, 0);
                break;

            case DaemonOpcode.Stats:
                lender.Stats(client).Write(_frame.AsSpan(ReplyBody));
                Reply(header.Opcode, DaemonStatus.Ok, header.RequestId, DaemonStats.Size);
                break;
        }

        return true;
    }

    /// <summary>Sends a handshake step's reply; false (the connection ends) when the step refuses the peer.</summary>
    private bool Answer(DaemonFrameHeader header, HandshakeStep step)
    {
        Reply(header.Opcode, step.Status, header.RequestId, step.ReplyBodyLength);
        if (!step.Close)
        {
            return true;
        }

        // The refusal must reach the peer before the connection closes.
        replies.Flush();
        return false;
    }

    private void ServeWrite(DaemonFrameHeader header)
    {
        var range = SlabRange.Read(_frame.AsSpan(DaemonFrameHeader.Size, SlabRange.Size));
        if ((long)header.BodyLength - SlabRange.Size != range.Length)
        {
            DaemonProtocolException.Throw($"WRITE carries {header.BodyLength - SlabRange.Size} bytes but its range says {range.Length}");
        }

        var status = Resolve(range, out var slab);
        if (status != DaemonStatus.Ok)
        {
            receiver.Skip(range.Length, _frame);
            Reply(DaemonOpcode.Write, status, header.RequestId, 0);
            return;
        }

        try
        {
            // The payload goes from the socket straight into the slab's memory (one copy), a 2 MiB chunk at a time.
            var offset = (long)range.Offset;
            var remaining = (int)range.Length;
            while (remaining > 0)
            {
                var destination = slab!.Device.WritableSpan(offset, remaining);
                receiver.Receive(destination, endOfStreamOk: false);
                offset += destination.Length;
                remaining -= destination.Length;
            }

            // Evicted while the payload was arriving: the server must not count these pages as stored.
            status = slab!.Revoked ? DaemonStatus.Stale : DaemonStatus.Ok;
        }
        catch (BlockDeviceException ex)
        {
            DonorLog.RequestFailed(logger, ex, connection.Id, nameof(DaemonOpcode.Write));
            status = DaemonStatus.Io;
        }
        finally
        {
            slab!.Release();
        }

        Reply(DaemonOpcode.Write, status, header.RequestId, 0, status == DaemonStatus.Ok ? (long)range.Length : 0);
    }

    private void ServeRead(ulong requestId, SlabRange range)
    {
        var status = Resolve(range, out var slab);
        if (status == DaemonStatus.Ok && range.Length > DaemonFrameHeader.MaxPayload)
        {
            slab!.Release();
            status = DaemonStatus.Invalid;
        }

        if (status != DaemonStatus.Ok)
        {
            Reply(DaemonOpcode.Read, status, requestId, 0);
            return;
        }

        try
        {
            replies.QueueRead(requestId, slab!.Device, (long)range.Offset, (int)range.Length);
            daemon.Metrics.Answered(DaemonOpcode.Read, (long)range.Length);
        }
        finally
        {
            slab!.Release();
        }
    }

    private void ServeTrim(ulong requestId, SlabRange range)
    {
        var status = Resolve(range, out var slab);
        if (status == DaemonStatus.Ok)
        {
            try
            {
                // SparseMemoryDevice trims synchronously: madvise(DONTNEED) on whole pages.
                slab!.Device.Trim((long)range.Offset, range.Length);
            }
            finally
            {
                slab!.Release();
            }
        }

        Reply(DaemonOpcode.Trim, status, requestId, 0);
    }

    /// <summary>Finds the slab a request names and takes a reference on it (OK), or says why not (STALE, INVALID).</summary>
    private DaemonStatus Resolve(SlabRange range, out DonorSlab? slab)
    {
        slab = daemon.Slabs.Find(range.SlabId);
        if (slab is null || slab.Epoch != range.Epoch || slab.Owner != connection.Client || !slab.TryAcquire())
        {
            slab = null;
            return DaemonStatus.Stale;
        }

        if (slab.Revoked || !range.FitsIn((ulong)slab.Size))
        {
            var status = slab.Revoked ? DaemonStatus.Stale : DaemonStatus.Invalid;
            slab.Release();
            slab = null;
            return status;
        }

        slab.LastAccess = daemon.Now();
        return DaemonStatus.Ok;
    }

    /// <summary>Queues a reply whose body (<paramref name="bodyLength"/> bytes) is already in the frame buffer after the header.</summary>
    /// <param name="written">Page bytes a WRITE stored (for the metrics; a READ's are its body).</param>
    private void Reply(DaemonOpcode opcode, DaemonStatus status, ulong requestId, int bodyLength, long written = 0)
    {
        daemon.Metrics.Answered(opcode, opcode == DaemonOpcode.Read ? bodyLength : written);
        DaemonFrameHeader.For(opcode, status, requestId, bodyLength).Write(_frame);
        replies.Queue(_frame.AsSpan(0, DaemonFrameHeader.Size + bodyLength));
    }
}
