namespace Swap.Nbd.Client.Attach;

/// <summary>What <c>swapnbd-client attach</c> was asked to do; the command-line layer above fills it in.</summary>
internal sealed record AttachSettings
{
    public required NbdUri Uri { get; init; }

    public int Connections { get; init; } = 1;

    public uint BlockSize { get; init; } = 4096;

    /// <summary>Kernel request timeout (NBD_ATTR_TIMEOUT) in seconds; null leaves the kernel default (none).</summary>
    public ulong? TimeoutSeconds { get; init; }

    /// <summary>NBD_ATTR_DEAD_CONN_TIMEOUT: how long the kernel holds requests while every connection is dead.</summary>
    public ulong? DeadTimeoutSeconds { get; init; }

    public uint? Index { get; init; }

    public string? BackendId { get; init; }

    public bool Persist { get; init; }

    /// <summary>How often the persist loop asks the kernel whether the device is still connected.</summary>
    public TimeSpan HealthInterval { get; init; } = TimeSpan.FromSeconds(5);
}
