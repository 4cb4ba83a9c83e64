using System.Buffers.Binary;
using System.Text;
using Swap.Nbd.Protocol;

namespace Swap.Nbd.Client;

/// <summary>
/// Gives each reply its meaning: finds the request it answers, checks the reply against that request (a READ's chunks
/// lie inside it and cover it whole, BLOCK_STATUS comes as extents), records errors and extents, and completes the
/// request. A reply that does not fit is a protocol violation.
/// </summary>
internal sealed class ReplyMatcher
{
    private readonly PendingRequestTable _table;
    private readonly bool _structuredReplies;
    private readonly uint? _baseAllocationContextId;

    public ReplyMatcher(PendingRequestTable table, NbdNegotiation negotiation)
    {
        _table = table;
        _structuredReplies = negotiation.StructuredReplies;
        _baseAllocationContextId = negotiation.BaseAllocationContextId;
    }

    /// <summary>A simple reply; true when READ data follows it (then <paramref name="data"/> says where it goes).</summary>
    public bool OnSimpleReply(NbdSimpleReply reply, out ReadData data)
    {
        data = default;
        var request = Find(reply.Cookie);
        if (reply.Error != NbdError.None)
        {
            // Without structured replies a failed READ carries no data, so the stream stays in sync.
            request.Error = reply.Error;
            Finish(request);
            return false;
        }

        switch (request.Command)
        {
            case NbdCommand.Read when _structuredReplies:
                NbdProtocolException.Throw("simple reply to a READ after structured replies were negotiated");
                break;
            case NbdCommand.Read when request.Length > 0:
                data = new ReadData(request, 0, (int)request.Length, Completes: true);
                request.BytesCovered = request.Length;
                return true;
            case NbdCommand.BlockStatus:
                NbdProtocolException.Throw("simple reply to BLOCK_STATUS");
                break;
            default:
                Finish(request);
                break;
        }

        return false;
    }

    /// <summary>The header of an OFFSET_DATA chunk at <paramref name="offset"/>; returns where its data goes.</summary>
    public ReadData OnOffsetData(NbdStructuredReply chunk, ulong offset)
    {
        var request = Find(chunk.Cookie);
        var length = chunk.Length - 8;
        var at = CheckRange(request, offset, length, "OFFSET_DATA");
        request.BytesCovered += length;
        return new ReadData(request, at, (int)length, chunk.Flags.HasFlag(NbdReplyFlags.Done));
    }

    /// <summary>Any other structured reply chunk, with its whole payload.</summary>
    public void OnChunk(NbdStructuredReply chunk, ReadOnlySpan<byte> payload)
    {
        var request = Find(chunk.Cookie);
        switch (chunk.Type)
        {
            case NbdReplyChunkType.None:
                if (payload.Length != 0 || !chunk.Flags.HasFlag(NbdReplyFlags.Done))
                {
                    NbdProtocolException.Throw("NONE chunk must be empty and final");
                }

                break;

            case NbdReplyChunkType.OffsetHole:
                if (payload.Length != 12)
                {
                    NbdProtocolException.Throw($"OFFSET_HOLE chunk of {payload.Length} bytes");
                }

                var holeLength = BinaryPrimitives.ReadUInt32BigEndian(payload[8..]);
                if (holeLength == 0)
                {
                    NbdProtocolException.Throw("OFFSET_HOLE of length 0");
                }

                var at = CheckRange(request, BinaryPrimitives.ReadUInt64BigEndian(payload), holeLength, "OFFSET_HOLE");
                request.Destination.Span.Slice(at, (int)holeLength).Clear();
                request.BytesCovered += holeLength;
                break;

            case NbdReplyChunkType.BlockStatus:
                if (request.Command != NbdCommand.BlockStatus || payload.Length < 12 || (payload.Length - 4) % 8 != 0)
                {
                    NbdProtocolException.Throw($"BLOCK_STATUS chunk of {payload.Length} bytes for {request.Command}");
                }

                if (BinaryPrimitives.ReadUInt32BigEndian(payload) == _baseAllocationContextId)
                {
                    for (var i = 4; i < payload.Length; i += 8)
                    {
                        var length = BinaryPrimitives.ReadUInt32BigEndian(payload[i..]);
                        if (length == 0)
                        {
                            NbdProtocolException.Throw("BLOCK_STATUS extent of length 0");
                        }

                        request.Extents?.Add(new NbdExtent(length, (NbdAllocationState)BinaryPrimitives.ReadUInt32BigEndian(payload[(i + 4)..])));
                    }
                }

                break;

            default:
                if (((ushort)chunk.Type & 0x8000) == 0)
                {
                    NbdProtocolException.Throw($"unknown structured reply chunk type {(ushort)chunk.Type}");
                }

                OnErrorChunk(request, chunk.Type, payload);
                break;
        }

        if (chunk.Flags.HasFlag(NbdReplyFlags.Done))
        {
            Finish(request);
        }
    }

    private static void OnErrorChunk(PendingRequest request, NbdReplyChunkType type, ReadOnlySpan<byte> payload)
    {
        var known = type is NbdReplyChunkType.Error or NbdReplyChunkType.ErrorOffset;
        var error = NbdError.Inval;
        string? message = null;
        if (payload.Length >= 6)
        {
            var messageLength = BinaryPrimitives.ReadUInt16BigEndian(payload[4..]);
            var need = 6 + messageLength + (type == NbdReplyChunkType.ErrorOffset ? 8 : 0);
            if (need > payload.Length || (known && need != payload.Length))
            {
                NbdProtocolException.Throw($"{type} chunk with a bad message length");
            }

            error = (NbdError)BinaryPrimitives.ReadUInt32BigEndian(payload);
            message = messageLength == 0 ? null : Encoding.UTF8.GetString(payload.Slice(6, messageLength));
        }
        else if (known)
        {
            NbdProtocolException.Throw($"{type} chunk of {payload.Length} bytes");
        }

        // Error 0 in an error chunk is a server bug; the spec tells clients to treat unknown errors as EINVAL.
        if (request.Error == NbdError.None)
        {
            request.Error = error == NbdError.None ? NbdError.Inval : error;
            request.ErrorMessage = message;
        }
    }

    /// <summary>Completes a request whose last reply or chunk has arrived; it leaves the table first.</summary>
    public void Finish(PendingRequest request)
    {
        if (request.Command == NbdCommand.Read && request.Error == NbdError.None && request.BytesCovered != request.Length)
        {
            NbdProtocolException.Throw($"READ at {request.Offset} finished with {request.BytesCovered} of {request.Length} bytes");
        }

        _table.Remove(request.Cookie);

        // The caller may recycle the request as soon as this returns: nothing touches it afterwards.
        request.Complete();
    }

    private PendingRequest Find(ulong cookie)
    {
        var request = _table.Find(cookie);
        if (request is null || !request.Sent)
        {
            NbdProtocolException.Throw($"reply for unknown cookie {cookie}");
        }

        return request;
    }

    /// <summary>Checks a READ chunk lies inside its request; returns its position in the destination.</summary>
    private static int CheckRange(PendingRequest request, ulong offset, uint length, string what)
    {
        if (request.Command != NbdCommand.Read)
        {
            NbdProtocolException.Throw($"{what} chunk for {request.Command}");
        }

        if (offset < request.Offset || offset - request.Offset > request.Length || length > request.Length - (offset - request.Offset))
        {
            NbdProtocolException.Throw($"{what} chunk at {offset} (+{length}) outside the READ at {request.Offset} (+{request.Length})");
        }

        return (int)(offset - request.Offset);
    }
}
