namespace Swap.Nbd.Client.Netlink;

/// <summary>Receives each reply of a request (before its ACK) or each multicast notice.</summary>
public delegate void NetlinkReplyHandler(NetlinkMessage message);
