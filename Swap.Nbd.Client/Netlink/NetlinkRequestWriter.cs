namespace Swap.Nbd.Client.Netlink;

/// <summary>Writes one request with the given sequence number into the buffer and returns its length.</summary>
public delegate int NetlinkRequestWriter(Span<byte> buffer, uint sequence);
