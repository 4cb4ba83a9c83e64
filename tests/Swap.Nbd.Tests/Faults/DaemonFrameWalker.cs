using System.Buffers.Binary;
using Swap.Daemon.Protocol;

namespace Swap.Nbd.Tests.Faults;

/// <summary>
/// Follows one direction of a daemon connection's byte stream frame by frame, however the bytes are cut, for a fault
/// layer that changes what a frame carries: it collects each frame's header and the slab range of READ, WRITE and
/// TRIM requests, then hands every later byte of the body to <see cref="Body"/> with its position, where it may be
/// changed in place. A stream it cannot follow (a length shorter than a header) makes it step aside for good.
/// </summary>
internal sealed class DaemonFrameWalker(bool requests)
{
    private readonly byte[] _prefix = new byte[DaemonFrameHeader.Size + SlabRange.Size];
    private int _have;
    private int _want = DaemonFrameHeader.Size;
    private long _bodyLeft;
    private long _bodyPosition;

    /// <summary>The frame being walked: opcode, status, request id.</summary>
    public DaemonFrameHeader Header { get; private set; }

    /// <summary>The slab range of the request being walked (READ, WRITE, TRIM), else default.</summary>
    public SlabRange Range { get; private set; }

    /// <summary>The stream could not be followed; nothing more is reported.</summary>
    public bool Lost { get; private set; }

    /// <summary>A frame's header (and range) are complete.</summary>
    public Action<DaemonFrameWalker>? Started { get; init; }

    /// <summary>Bytes of the body after the range, with their position in that part of the body; may be changed in place.</summary>
    public SpanAction? Body { get; init; }

    public delegate void SpanAction(DaemonFrameWalker walker, long position, Span<byte> bytes);

    /// <summary>Walks the next bytes of the stream.</summary>
    public void Walk(Span<byte> bytes)
    {
        while (!bytes.IsEmpty && !Lost)
        {
            if (_bodyLeft > 0 && _have == _want)
            {
                var n = (int)Math.Min(_bodyLeft, bytes.Length);
                Body?.Invoke(this, _bodyPosition, bytes[..n]);
                _bodyPosition += n;
                _bodyLeft -= n;
                bytes = bytes[n..];
                if (_bodyLeft == 0)
                {
                    Reset();
                }

                continue;
            }

            var take = Math.Min(_want - _have, bytes.Length);
            bytes[..take].CopyTo(_prefix.AsSpan(_have));
            _have += take;
            bytes = bytes[take..];
            if (_have < _want)
            {
                continue;
            }

            if (_want == DaemonFrameHeader.Size)
            {
                var length = BinaryPrimitives.ReadUInt32BigEndian(_prefix);
                if (length < DaemonFrameHeader.Size - 4 || length > DaemonFrameHeader.Size - 4 + 64 + DaemonFrameHeader.MaxPayload)
                {
                    // Not a frame of this protocol (a fuzzer's bytes, say): the daemon closes the connection; stop following.
                    Lost = true;
                    return;
                }

                Header = new DaemonFrameHeader(length, (DaemonOpcode)BinaryPrimitives.ReadUInt16BigEndian(_prefix.AsSpan(4)),
                    (DaemonStatus)BinaryPrimitives.ReadUInt16BigEndian(_prefix.AsSpan(6)), BinaryPrimitives.ReadUInt64BigEndian(_prefix.AsSpan(8)));
                _bodyLeft = (long)length - (DaemonFrameHeader.Size - 4);
                if (requests && Header.Opcode is DaemonOpcode.Read or DaemonOpcode.Write or DaemonOpcode.Trim && _bodyLeft >= SlabRange.Size)
                {
                    _want += SlabRange.Size;
                    _bodyLeft -= SlabRange.Size;
                    continue;
                }
            }
            else
            {
                Range = SlabRange.Read(_prefix.AsSpan(DaemonFrameHeader.Size));
            }

            Started?.Invoke(this);
            if (_bodyLeft == 0)
            {
                Reset();
            }
        }
    }

    private void Reset()
    {
        _have = 0;
        _want = DaemonFrameHeader.Size;
        _bodyPosition = 0;
        Range = default;
    }
}
