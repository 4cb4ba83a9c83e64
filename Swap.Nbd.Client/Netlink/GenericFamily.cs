namespace Swap.Nbd.Client.Netlink;

/// <summary>A generic netlink family as the controller describes it: its message type id and multicast groups.</summary>
public sealed record GenericFamily(string Name, ushort Id, uint Version, IReadOnlyDictionary<string, uint> MulticastGroups);
