using System.Buffers.Binary;

namespace Swap.Daemon.Protocol;

/// <summary>HELLO request body: u32 magic "SWPD", u16 version, u16 flags, u64 client id (16 bytes).</summary>
public readonly record struct DaemonHello(ushort Version, ulong ClientId, DaemonHelloFlags Flags = DaemonHelloFlags.None)
{
    public const int Size = 16;

    public void Write(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt32BigEndian(destination, DaemonFrameHeader.HelloMagic);
        BinaryPrimitives.WriteUInt16BigEndian(destination[4..], Version);
        BinaryPrimitives.WriteUInt16BigEndian(destination[6..], (ushort)Flags);
        BinaryPrimitives.WriteUInt64BigEndian(destination[8..], ClientId);
    }

    public static DaemonHello Read(ReadOnlySpan<byte> body)
    {
        if (body.Length < Size)
        {
            DaemonProtocolException.Throw($"HELLO body of {body.Length} bytes, need {Size}");
        }

        if (BinaryPrimitives.ReadUInt32BigEndian(body) != DaemonFrameHeader.HelloMagic)
        {
            DaemonProtocolException.Throw("HELLO without the SWPD magic: not a SwapNbd server");
        }

        return new DaemonHello(BinaryPrimitives.ReadUInt16BigEndian(body[4..]), BinaryPrimitives.ReadUInt64BigEndian(body[8..]),
            (DaemonHelloFlags)BinaryPrimitives.ReadUInt16BigEndian(body[6..]));
    }
}

/// <summary>HELLO reply body: u16 version, u16 reserved, u32 max slabs for this client, u64 daemon id (16 bytes).</summary>
public readonly record struct DaemonWelcome(ushort Version, uint MaxSlabs, ulong DaemonId)
{
    public const int Size = 16;

    public void Write(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt16BigEndian(destination, Version);
        BinaryPrimitives.WriteUInt16BigEndian(destination[2..], 0);
        BinaryPrimitives.WriteUInt32BigEndian(destination[4..], MaxSlabs);
        BinaryPrimitives.WriteUInt64BigEndian(destination[8..], DaemonId);
    }

    public static DaemonWelcome Read(ReadOnlySpan<byte> body)
    {
        if (body.Length < Size)
        {
            DaemonProtocolException.Throw($"HELLO reply of {body.Length} bytes, need {Size}");
        }

        return new DaemonWelcome(BinaryPrimitives.ReadUInt16BigEndian(body), BinaryPrimitives.ReadUInt32BigEndian(body[4..]), BinaryPrimitives.ReadUInt64BigEndian(body[8..]));
    }
}
