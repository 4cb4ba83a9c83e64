using System.Buffers.Binary;

namespace Swap.Daemon.Protocol;

/// <summary>
/// The 16-byte header of every daemon-protocol frame: u32 length (bytes after the length field), u16 opcode,
/// u16 status, u64 request id. <see cref="TryRead"/> refuses frames whose length cannot be right for the opcode.
/// </summary>
public readonly record struct DaemonFrameHeader(uint Length, DaemonOpcode Opcode, DaemonStatus Status, ulong RequestId)
{
    public const int Size = 16;
    /// <summary>Largest READ/WRITE payload.</summary>
    public const int MaxPayload = 32 * 1024 * 1024;
    public const uint HelloMagic = 0x53575044; // "SWPD"
    /// <summary>2: HELLO carries a nonce and the handshake ends with AUTH (mutual proof of the cluster key).</summary>
    public const ushort Version = 2;
    private const int MaxFixedBody = 24; // the largest body beside a payload; the handshake's (at most 80) are far below the bound

    /// <summary>Bytes of body that follow the header.</summary>
    public int BodyLength => (int)Length - (Size - 4);

    public static DaemonFrameHeader For(DaemonOpcode opcode, DaemonStatus status, ulong requestId, int bodyLength) =>
        new((uint)(Size - 4 + bodyLength), opcode, status, requestId);

    public void Write(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt32BigEndian(destination, Length);
        BinaryPrimitives.WriteUInt16BigEndian(destination[4..], (ushort)Opcode);
        BinaryPrimitives.WriteUInt16BigEndian(destination[6..], (ushort)Status);
        BinaryPrimitives.WriteUInt64BigEndian(destination[8..], RequestId);
    }

    /// <summary>False if fewer than 16 bytes; throws <see cref="DaemonProtocolException"/> on a frame that cannot be valid.</summary>
    public static bool TryRead(ReadOnlySpan<byte> source, out DaemonFrameHeader header)
    {
        header = default;
        if (source.Length < Size)
        {
            return false;
        }

        var length = BinaryPrimitives.ReadUInt32BigEndian(source);
        var opcode = (DaemonOpcode)BinaryPrimitives.ReadUInt16BigEndian(source[4..]);
        if (opcode is < DaemonOpcode.Hello or > DaemonOpcode.Auth)
        {
            DaemonProtocolException.Throw($"unknown opcode {(ushort)opcode}");
        }

        if (length < Size - 4 || length > Size - 4 + MaxFixedBody + MaxPayload)
        {
            DaemonProtocolException.Throw($"frame length {length} out of range");
        }

        header = new DaemonFrameHeader(length, opcode,
            (DaemonStatus)BinaryPrimitives.ReadUInt16BigEndian(source[6..]),
            BinaryPrimitives.ReadUInt64BigEndian(source[8..]));
        return true;
    }
}
