namespace Swap.Nbd.Client.Netlink;

/// <summary>The kernel refused a netlink request (NLMSG_ERROR with a negative errno).</summary>
public sealed class NetlinkErrorException(int errno, string message) : Exception(message)
{
    /// <summary>The positive errno (e.g. 2 ENOENT: no such family; 1 EPERM: needs CAP_SYS_ADMIN).</summary>
    public int Errno { get; } = errno;
}
