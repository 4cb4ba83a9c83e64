using System.Runtime.InteropServices;

namespace Swap.Nbd.Client.Netlink;

/// <summary>Walks a run of attributes; a length that does not fit is a <see cref="NetlinkProtocolException"/>.</summary>
public ref struct NetlinkAttributeReader(ReadOnlySpan<byte> attributes)
{
    private ReadOnlySpan<byte> _rest = attributes;

    public bool TryNext(out NetlinkAttribute attribute)
    {
        attribute = default;
        if (_rest.Length < Netlink.AttributeHeaderSize)
        {
            // Fewer bytes than a header: padding at most (the kernel never sends a partial attribute).
            return false;
        }

        var length = MemoryMarshal.Read<ushort>(_rest);
        var type = MemoryMarshal.Read<ushort>(_rest[2..]);
        if (length < Netlink.AttributeHeaderSize || length > _rest.Length)
        {
            throw new NetlinkProtocolException($"netlink attribute length {length} does not fit the {_rest.Length} bytes left");
        }

        attribute = new NetlinkAttribute((ushort)(type & Netlink.AttributeTypeMask), (type & Netlink.AttributeNested) != 0,
            _rest[Netlink.AttributeHeaderSize..length]);
        _rest = _rest[Math.Min(_rest.Length, Netlink.Align(length))..];
        return true;
    }
}
