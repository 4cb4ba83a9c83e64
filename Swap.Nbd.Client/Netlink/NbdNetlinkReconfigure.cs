namespace Swap.Nbd.Client.Netlink;

/// <summary>NBD_CMD_RECONFIGURE: replacement sockets (they fill dead slots) and optional new timeouts for a device.</summary>
public sealed record NbdNetlinkReconfigure
{
    public required uint Index { get; init; }

    public IReadOnlyList<int> Sockets { get; init; } = [];

    public ulong? TimeoutSeconds { get; init; }

    public ulong? DeadConnectionTimeoutSeconds { get; init; }

    public string? BackendIdentifier { get; init; }
}
