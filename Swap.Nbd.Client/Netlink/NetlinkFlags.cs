namespace Swap.Nbd.Client.Netlink;

/// <summary>nlmsg_flags.</summary>
[Flags]
public enum NetlinkFlags : ushort
{
    None = 0,
    Request = 0x1,
    Multi = 0x2,
    Ack = 0x4,
    Echo = 0x8,

    /// <summary>NLM_F_ROOT | NLM_F_MATCH.</summary>
    Dump = 0x300,
}
