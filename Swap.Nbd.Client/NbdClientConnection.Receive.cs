using System.Buffers;
using System.Buffers.Binary;
using System.Text;
using Swap.Nbd.Protocol;

namespace Swap.Nbd.Client;

public sealed partial class NbdClientConnection
{
    /// <summary>Chunks other than OFFSET_DATA are buffered whole; 2^20 extents (the spec's SHOULD limit) fit.</summary>
    private const int MaxBufferedChunk = (8 << 20) + 64;

    // Receive-loop state for READ data that arrives over several socket reads; copied straight to the caller.
    private PendingRequest? _dataTarget;
    private int _dataOffset;
    private int _dataRemaining;
    private bool _dataCompletes;

    private async Task ReceiveLoopAsync()
    {
        Exception? error = null;
        try
        {
            while (true)
            {
                var result = await _input.ReadAsync().ConfigureAwait(false);
                var buffer = result.Buffer;
                try
                {
                    Process(ref buffer);
                }
                finally
                {
                    _input.AdvanceTo(buffer.Start, buffer.End);
                }

                if (result.IsCanceled)
                {
                    break;
                }

                if (result.IsCompleted)
                {
                    if (!buffer.IsEmpty || _dataRemaining > 0)
                    {
                        error = new NbdConnectionClosedException("server closed the connection in the middle of a reply");
                    }

                    break;
                }
            }
        }
        catch (NbdProtocolException ex)
        {
            error = ex;
        }
        catch (Exception ex)
        {
            error = new NbdConnectionClosedException($"receiving from the server failed: {ex.Message}", ex);
        }

        FailAll(error);
    }

    /// <summary>Ends the connection: every request still pending fails. Runs only on the receive loop, which is what completes requests.</summary>
    private void FailAll(Exception? error)
    {
        List<PendingRequest> orphans;
        Exception reason;
        lock (_lock)
        {
            _failure ??= error ?? new NbdConnectionClosedException(_disconnecting ? "disconnected" : "server closed the connection");
            reason = _failure;
            orphans = [.. _pending.Values];
            _pending.Clear();
        }

        _dataTarget = null;
        _dataRemaining = 0;
        if (error is not null)
        {
            Abort(error);
        }
        else
        {
            _requests.Writer.TryComplete();
        }

        var message = reason is NbdProtocolException
            ? $"connection closed: server violated the NBD protocol: {reason.Message}"
            : $"connection closed: {reason.Message}";
        foreach (var request in orphans)
        {
            request.Fail(new NbdConnectionClosedException(message, reason));
        }
    }

    private void Process(ref ReadOnlySequence<byte> buffer)
    {
        Span<byte> head = stackalloc byte[NbdStructuredReply.OffsetDataPrefixSize];
        while (true)
        {
            if (_dataRemaining > 0)
            {
                var n = (int)Math.Min(_dataRemaining, buffer.Length);
                if (n == 0)
                {
                    return;
                }

                buffer.Slice(0, n).CopyTo(_dataTarget!.Destination.Span.Slice(_dataOffset, n));
                buffer = buffer.Slice(n);
                _dataOffset += n;
                _dataRemaining -= n;
                if (_dataRemaining > 0)
                {
                    return;
                }

                var target = _dataTarget;
                _dataTarget = null;
                if (_dataCompletes)
                {
                    Finish(target);
                }

                continue;
            }

            if (buffer.Length < 4)
            {
                return;
            }

            buffer.Slice(0, 4).CopyTo(head);
            var magic = BinaryPrimitives.ReadUInt32BigEndian(head);
            if (magic == NbdMagic.SimpleReply)
            {
                if (buffer.Length < NbdSimpleReply.Size)
                {
                    return;
                }

                buffer.Slice(0, NbdSimpleReply.Size).CopyTo(head);
                buffer = buffer.Slice(NbdSimpleReply.Size);
                OnSimpleReply(NbdSimpleReply.Read(head));
            }
            else if (magic == NbdMagic.StructuredReply)
            {
                if (buffer.Length < NbdStructuredReply.Size)
                {
                    return;
                }

                buffer.Slice(0, NbdStructuredReply.Size).CopyTo(head);
                var chunk = NbdStructuredReply.Read(head);
                if (chunk.Type == NbdReplyChunkType.OffsetData)
                {
                    // Only the offset is needed up front; the data is copied as it arrives.
                    if (chunk.Length < 9)
                    {
                        NbdProtocolException.Throw($"OFFSET_DATA chunk of {chunk.Length} bytes");
                    }

                    if (buffer.Length < NbdStructuredReply.OffsetDataPrefixSize)
                    {
                        return;
                    }

                    buffer.Slice(0, NbdStructuredReply.OffsetDataPrefixSize).CopyTo(head);
                    buffer = buffer.Slice(NbdStructuredReply.OffsetDataPrefixSize);
                    OnOffsetData(chunk, BinaryPrimitives.ReadUInt64BigEndian(head[NbdStructuredReply.Size..]));
                }
                else
                {
                    if (chunk.Length > MaxBufferedChunk)
                    {
                        NbdProtocolException.Throw($"{chunk.Type} chunk of {chunk.Length} bytes");
                    }

                    if (buffer.Length < NbdStructuredReply.Size + chunk.Length)
                    {
                        return;
                    }

                    var payload = buffer.Slice(NbdStructuredReply.Size, chunk.Length);
                    OnChunk(chunk, payload.IsSingleSegment ? payload.FirstSpan : payload.ToArray());
                    buffer = buffer.Slice(NbdStructuredReply.Size + chunk.Length);
                }
            }
            else
            {
                NbdProtocolException.Throw($"reply with bad magic 0x{magic:x8}");
            }
        }
    }

    private void OnSimpleReply(NbdSimpleReply reply)
    {
        var request = Find(reply.Cookie);
        if (reply.Error != NbdError.None)
        {
            // Without structured replies a failed READ carries no data, so the stream stays in sync.
            request.Error = reply.Error;
            Finish(request);
            return;
        }

        switch (request.Command)
        {
            case NbdCommand.Read when StructuredReplies:
                NbdProtocolException.Throw("simple reply to a READ after structured replies were negotiated");
                break;
            case NbdCommand.Read when request.Length > 0:
                StartData(request, 0, (int)request.Length, completes: true);
                request.BytesCovered = request.Length;
                break;
            case NbdCommand.BlockStatus:
                NbdProtocolException.Throw("simple reply to BLOCK_STATUS");
                break;
            default:
                Finish(request);
                break;
        }
    }

    private void OnOffsetData(NbdStructuredReply chunk, ulong offset)
    {
        var request = Find(chunk.Cookie);
        var length = chunk.Length - 8;
        var at = CheckRange(request, offset, length, "OFFSET_DATA");
        request.BytesCovered += length;
        StartData(request, at, (int)length, chunk.Flags.HasFlag(NbdReplyFlags.Done));
    }

    private void OnChunk(NbdStructuredReply chunk, ReadOnlySpan<byte> payload)
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

                if (BinaryPrimitives.ReadUInt32BigEndian(payload) == Negotiation.BaseAllocationContextId)
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

    private PendingRequest Find(ulong cookie)
    {
        PendingRequest? request;
        lock (_lock)
        {
            _pending.TryGetValue(cookie, out request);
        }

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

    private void StartData(PendingRequest request, int at, int length, bool completes)
    {
        _dataTarget = request;
        _dataOffset = at;
        _dataRemaining = length;
        _dataCompletes = completes;
    }

    private void Finish(PendingRequest request)
    {
        if (request.Command == NbdCommand.Read && request.Error == NbdError.None && request.BytesCovered != request.Length)
        {
            NbdProtocolException.Throw($"READ at {request.Offset} finished with {request.BytesCovered} of {request.Length} bytes");
        }

        lock (_lock)
        {
            _pending.Remove(request.Cookie);
        }

        // The caller may recycle the request as soon as this returns: nothing touches it afterwards.
        request.Complete();
    }
}
