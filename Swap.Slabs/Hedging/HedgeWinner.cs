namespace Swap.Slabs.Hedging;

/// <summary>Which side answered a <see cref="HedgedRead"/>.</summary>
internal enum HedgeWinner
{
    /// <summary>The daemon answered OK first: its bytes are in <see cref="HedgedRead.DaemonBuffer"/>.</summary>
    Daemon,

    /// <summary>The backup disk answered first (the daemon was slower than the bound): the bytes are in <see cref="HedgedRead.DiskBuffer"/>.</summary>
    Disk,

    /// <summary>Neither side has the bytes (the daemon failed and no disk read answered): read from the disk as without hedging.</summary>
    Neither,
}
