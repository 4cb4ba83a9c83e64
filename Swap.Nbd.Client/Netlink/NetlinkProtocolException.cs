namespace Swap.Nbd.Client.Netlink;

/// <summary>A netlink message from the kernel that does not parse: a length, type or attribute out of bounds.</summary>
public sealed class NetlinkProtocolException(string message) : Exception(message);
