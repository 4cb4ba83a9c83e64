using System.Runtime.InteropServices;
using System.Text;

namespace Swap.Nbd.Client.Netlink;

/// <summary>One attribute (type without the NESTED/BYTEORDER bits, and its payload), with checked readers.</summary>
public readonly ref struct NetlinkAttribute(ushort type, bool nested, ReadOnlySpan<byte> payload)
{
    public ushort Type { get; } = type;

    public bool Nested { get; } = nested;

    public ReadOnlySpan<byte> Payload { get; } = payload;

    public byte U8() => Payload.Length >= 1 ? Payload[0] : throw TooShort(1);

    public ushort U16() => Payload.Length >= 2 ? MemoryMarshal.Read<ushort>(Payload) : throw TooShort(2);

    public uint U32() => Payload.Length >= 4 ? MemoryMarshal.Read<uint>(Payload) : throw TooShort(4);

    public ulong U64() => Payload.Length >= 8 ? MemoryMarshal.Read<ulong>(Payload) : throw TooShort(8);

    /// <summary>The string up to its NUL (or the end of the payload).</summary>
    public string Text()
    {
        var end = Payload.IndexOf((byte)0);
        return Encoding.UTF8.GetString(end < 0 ? Payload : Payload[..end]);
    }

    public NetlinkAttributeReader Children() => new(Payload);

    private NetlinkProtocolException TooShort(int needed) =>
        new($"netlink attribute {Type} has {Payload.Length} bytes, needs {needed}");
}
