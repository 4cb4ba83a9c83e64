namespace Swap.Nbd.Client.Netlink;

/// <summary>What NBD_CMD_CONNECT tells the kernel; unset optional values are left out of the message (kernel defaults).</summary>
public sealed record NbdNetlinkConnect
{
    /// <summary>Connected, handshaken sockets (file descriptors); the kernel takes them over.</summary>
    public required IReadOnlyList<int> Sockets { get; init; }

    public required ulong SizeBytes { get; init; }

    public ulong BlockSizeBytes { get; init; } = 4096;

    /// <summary>The server's transmission flags from the handshake.</summary>
    public ulong ServerFlags { get; init; }

    /// <summary>Per-request timeout in seconds; null leaves the kernel's default (no timeout).</summary>
    public ulong? TimeoutSeconds { get; init; }

    /// <summary>How long the kernel holds requests with every connection dead, waiting for a RECONFIGURE.</summary>
    public ulong? DeadConnectionTimeoutSeconds { get; init; }

    public ulong ClientFlags { get; init; }

    /// <summary>Names the backend; a later RECONFIGURE must name the same one.</summary>
    public string? BackendIdentifier { get; init; }

    /// <summary>The device index (/dev/nbdN); null lets the kernel pick a free one.</summary>
    public uint? Index { get; init; }
}
