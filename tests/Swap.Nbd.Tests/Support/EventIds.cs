namespace Swap.Nbd.Tests.Support;

/// <summary>The stable event ids of the production log messages tests look for (see each library's *Log.cs).</summary>
internal static class EventIds
{
    /// <summary>ServerLog.TooManyConnections: a connection beyond MaxConnections was refused.</summary>
    public const int TooManyConnections = 4;

    /// <summary>ConnectionLog.HandshakeTimeout: a client did not finish its handshake in time.</summary>
    public const int HandshakeTimeout = 7;

    /// <summary>ConnectionLog.WaitingForBudget: a connection parked a request until its own in flight free buffer budget.</summary>
    public const int WaitingForBudget = 17;

    /// <summary>ServerLog.Unexpected: an exception the connection code did not anticipate.</summary>
    public const int Unexpected = 15;

    /// <summary>DaemonLinkLog.LinkDown: a daemon link failed (timeout, protocol violation, closed).</summary>
    public const int LinkDown = 300;

    /// <summary>SlabLog.Unmapped: a slab left its daemon and is served from the backup disk.</summary>
    public const int SlabUnmapped = 351;

    /// <summary>SlabLog.BackupDiskError: the backup disk failed an I/O.</summary>
    public const int BackupDiskError = 354;

    /// <summary>SlabLog.PageOpenFailed: a page a daemon returned failed to open and was read from the disk.</summary>
    public const int PageOpenFailed = 356;

    /// <summary>SlabLog.DaemonUntrusted: a daemon whose slabs returned pages that fail to open was failed.</summary>
    public const int DaemonUntrusted = 357;
}
