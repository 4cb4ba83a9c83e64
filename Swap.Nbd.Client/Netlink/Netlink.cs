namespace Swap.Nbd.Client.Netlink;

/// <summary>Netlink constants (linux/netlink.h, linux/genetlink.h) that the nbd family needs.</summary>
public static class Netlink
{
    /// <summary>AF_NETLINK.</summary>
    public const int AddressFamily = 16;

    /// <summary>NETLINK_GENERIC.</summary>
    public const int ProtocolGeneric = 16;

    public const int MessageHeaderSize = 16;
    public const int GenericHeaderSize = 4;
    public const int AttributeHeaderSize = 4;

    public const ushort TypeNoop = 1;
    public const ushort TypeError = 2;
    public const ushort TypeDone = 3;

    /// <summary>GENL_ID_CTRL: the generic netlink controller, which resolves family names to ids.</summary>
    public const ushort TypeGenericController = 0x10;

    /// <summary>NLA_F_NESTED; with NLA_F_NET_BYTEORDER these two bits are not part of the attribute type.</summary>
    public const ushort AttributeNested = 0x8000;
    public const ushort AttributeTypeMask = 0x3FFF;

    /// <summary>Rounds up to netlink's 4-byte alignment (NLMSG_ALIGN / NLA_ALIGN).</summary>
    public static int Align(int length) => (length + 3) & ~3;
}
