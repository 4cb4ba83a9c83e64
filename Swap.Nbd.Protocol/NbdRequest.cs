using System.Buffers.Binary;

namespace Swap.Nbd.Protocol;

/// <summary>A compact transmission-phase request header (28 bytes on the wire).</summary>
public readonly record struct NbdRequest(NbdCommandFlags Flags, NbdCommand Command, ulong Cookie, ulong Offset, uint Length)
{
    public const int Size = 28;

    /// <summary>Parses a request header; false if fewer than 28 bytes; throws on a bad magic (the stream cannot be resynced).</summary>
    public static bool TryRead(ReadOnlySpan<byte> source, out NbdRequest request)
    {
        request = default;
        if (source.Length < Size)
        {
            return false;
        }

        if (BinaryPrimitives.ReadUInt32BigEndian(source) != NbdMagic.Request)
        {
            NbdProtocolException.Throw("request has a bad magic");
        }

        request = new NbdRequest(
            (NbdCommandFlags)BinaryPrimitives.ReadUInt16BigEndian(source[4..]),
            (NbdCommand)BinaryPrimitives.ReadUInt16BigEndian(source[6..]),
            BinaryPrimitives.ReadUInt64BigEndian(source[8..]),
            BinaryPrimitives.ReadUInt64BigEndian(source[16..]),
            BinaryPrimitives.ReadUInt32BigEndian(source[24..]));
        return true;
    }

    public void Write(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt32BigEndian(destination, NbdMagic.Request);
        BinaryPrimitives.WriteUInt16BigEndian(destination[4..], (ushort)Flags);
        BinaryPrimitives.WriteUInt16BigEndian(destination[6..], (ushort)Command);
        BinaryPrimitives.WriteUInt64BigEndian(destination[8..], Cookie);
        BinaryPrimitives.WriteUInt64BigEndian(destination[16..], Offset);
        BinaryPrimitives.WriteUInt32BigEndian(destination[24..], Length);
    }
}
