using System.Runtime.InteropServices;

namespace Swap.Nbd.Client.Netlink;

/// <summary>One netlink message read from a datagram: its header fields and the payload after the header.</summary>
public readonly ref struct NetlinkMessage
{
    private NetlinkMessage(ushort type, NetlinkFlags flags, uint sequence, uint portId, ReadOnlySpan<byte> payload)
    {
        Type = type;
        Flags = flags;
        Sequence = sequence;
        PortId = portId;
        Payload = payload;
    }

    public ushort Type { get; }

    public NetlinkFlags Flags { get; }

    public uint Sequence { get; }

    public uint PortId { get; }

    public ReadOnlySpan<byte> Payload { get; }

    /// <summary>
    /// Reads the next message of <paramref name="datagram"/> (several may share one); false at its end. A length that
    /// does not fit is a <see cref="NetlinkProtocolException"/>.
    /// </summary>
    public static bool TryRead(ref ReadOnlySpan<byte> datagram, out NetlinkMessage message)
    {
        message = default;
        if (datagram.IsEmpty)
        {
            return false;
        }

        if (datagram.Length < Netlink.MessageHeaderSize)
        {
            throw new NetlinkProtocolException($"a netlink message of {datagram.Length} bytes is shorter than its header");
        }

        var length = MemoryMarshal.Read<uint>(datagram);
        if (length < Netlink.MessageHeaderSize || length > (uint)datagram.Length)
        {
            throw new NetlinkProtocolException($"netlink message length {length} does not fit the {datagram.Length} bytes received");
        }

        message = new NetlinkMessage(
            MemoryMarshal.Read<ushort>(datagram[4..]),
            (NetlinkFlags)MemoryMarshal.Read<ushort>(datagram[6..]),
            MemoryMarshal.Read<uint>(datagram[8..]),
            MemoryMarshal.Read<uint>(datagram[12..]),
            datagram[Netlink.MessageHeaderSize..(int)length]);
        datagram = datagram[Math.Min(datagram.Length, Netlink.Align((int)length))..];
        return true;
    }

    /// <summary>For NLMSG_ERROR: the errno (0 for an ACK, else positive).</summary>
    public int ErrorCode()
    {
        if (Type != Netlink.TypeError || Payload.Length < 4)
        {
            throw new NetlinkProtocolException($"not an error message (type {Type}, {Payload.Length} bytes)");
        }

        return -MemoryMarshal.Read<int>(Payload);
    }

    /// <summary>A generic netlink message's command (the first byte after the netlink header).</summary>
    public byte GenericCommand => Payload.Length >= Netlink.GenericHeaderSize
        ? Payload[0]
        : throw new NetlinkProtocolException($"a generic netlink message of {Payload.Length} bytes has no genl header");

    /// <summary>The attributes after the generic netlink header.</summary>
    public NetlinkAttributeReader GenericAttributes => new(Payload.Length >= Netlink.GenericHeaderSize
        ? Payload[Netlink.GenericHeaderSize..]
        : throw new NetlinkProtocolException($"a generic netlink message of {Payload.Length} bytes has no genl header"));
}
