using Swap.Daemon.Protocol;
using Swap.Donor.Transport;

namespace Swap.Donor.Connections;

/// <summary>
/// The receiving side of a connection: reads the transport into an input buffer, many frames a system call when the
/// server pipelines, and cuts requests out of it (header and fixed body; a WRITE's payload is left for the caller to
/// receive straight into slab memory). Before it blocks for input it sends the replies waiting: the server waits for them.
/// </summary>
internal sealed class DonorReceiver(IDonorTransport transport, DonorReplyBatcher replies)
{
    private const int BufferSize = DonorConnection.BufferSize;

    private readonly byte[] _input = GC.AllocateUninitializedArray<byte>(BufferSize, pinned: true);
    private int _inputStart;
    private int _inputEnd;

    /// <summary>
    /// Reads the next request into <paramref name="frame"/>: its header at 0 and the fixed part of its body right after
    /// (for WRITE, the slab range; the payload is still to come). Anything beyond a fixed body is skipped. False at a
    /// clean end of stream; a frame that is no request, or too short for its opcode, throws <see cref="DaemonProtocolException"/>.
    /// </summary>
    public bool ReadRequest(Span<byte> frame, out DaemonFrameHeader header)
    {
        if (!Receive(frame[..DaemonFrameHeader.Size], endOfStreamOk: true))
        {
            header = default;
            return false;
        }

        DaemonFrameHeader.TryRead(frame, out header);
        var bodyLength = header.BodyLength;
        if (header.Opcode == DaemonOpcode.Write)
        {
            if (bodyLength < SlabRange.Size)
            {
                DaemonProtocolException.Throw($"WRITE body of {bodyLength} bytes, need {SlabRange.Size}");
            }

            Receive(frame.Slice(DaemonFrameHeader.Size, SlabRange.Size), endOfStreamOk: false);
            return true;
        }

        var fixedBody = header.Opcode switch
        {
            // What a HELLO of any version starts with, up to a whole version 2 body; the handshake judges the length.
            DaemonOpcode.Hello => Math.Max(DaemonHello.PrefixSize, Math.Min(bodyLength, DaemonHello.Size)),
            DaemonOpcode.Auth => DaemonAuthProof.AuthBodySize,
            DaemonOpcode.QueryFree => SlabQuery.Size,
            DaemonOpcode.AllocSlab => SlabAllocRequest.Size,
            DaemonOpcode.Read or DaemonOpcode.Trim => SlabRange.Size,
            DaemonOpcode.FreeSlab => SlabRange.SlabOnlySize,
            DaemonOpcode.Stats => 0,
            _ => -1,
        };
        if (fixedBody < 0)
        {
            DaemonProtocolException.Throw($"{header.Opcode} is not a request");
        }

        if (bodyLength < fixedBody)
        {
            DaemonProtocolException.Throw($"{header.Opcode} body of {bodyLength} bytes, need {fixedBody}");
        }

        var end = DaemonFrameHeader.Size + fixedBody;
        Receive(frame[DaemonFrameHeader.Size..end], endOfStreamOk: false);
        // Skipped through the frame buffer past the fixed body, which the caller is about to read.
        Skip(bodyLength - fixedBody, frame[end..]);
        return true;
    }

    /// <summary>
    /// Fills <paramref name="destination"/> from the input buffer, refilling it from the transport as needed; what is
    /// large and not yet buffered is received straight into the destination. False only when
    /// <paramref name="endOfStreamOk"/> and the stream ended before the first byte; an end anywhere else throws
    /// <see cref="EndOfStreamException"/>.
    /// </summary>
    public bool Receive(Span<byte> destination, bool endOfStreamOk)
    {
        var first = true;
        while (!destination.IsEmpty)
        {
            var buffered = _inputEnd - _inputStart;
            if (buffered > 0)
            {
                var n = Math.Min(buffered, destination.Length);
                _input.AsSpan(_inputStart, n).CopyTo(destination);
                _inputStart += n;
                destination = destination[n..];
                first = false;
                continue;
            }

            if (transport.Available == 0)
            {
                replies.Flush();
            }

            int received;
            if (destination.Length >= BufferSize / 4)
            {
                received = transport.Receive(destination);
                destination = destination[received..];
            }
            else
            {
                _inputStart = 0;
                _inputEnd = received = transport.Receive(_input);
            }

            if (received == 0)
            {
                if (first && endOfStreamOk)
                {
                    return false;
                }

                throw new EndOfStreamException();
            }

            first = false;
        }

        return true;
    }

    /// <summary>Reads and drops <paramref name="count"/> bytes, through <paramref name="scratch"/>.</summary>
    public void Skip(long count, Span<byte> scratch)
    {
        while (count > 0)
        {
            var n = (int)Math.Min(count, scratch.Length);
            Receive(scratch[..n], endOfStreamOk: false);
            count -= n;
        }
    }
}
