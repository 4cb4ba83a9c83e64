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

    /// <summary>ServerLog.TcpExport: a TCP endpoint serves the export (whoever can connect reads and writes the device).</summary>
    public const int TcpExport = 18;

    /// <summary>ServerLog.HandshakeEvicted: the oldest handshaking connection was closed to admit a newer one.</summary>
    public const int HandshakeEvicted = 19;

    /// <summary>ServerLog.SocketDirectoryTightened: the socket's directory (ours) was opened to others; set to 0700.</summary>
    public const int SocketDirectoryTightened = 20;

    /// <summary>DonorLog.HandshakeEvicted: the oldest connection waiting for its HELLO was closed to admit a newer one.</summary>
    public const int DonorHandshakeEvicted = 40;

    /// <summary>ServerLog.Unexpected: an exception the connection code did not anticipate.</summary>
    public const int Unexpected = 15;

    /// <summary>Server: a request failed with an exception that is no device error (a bug; answered EIO).</summary>
    public const int RequestFailed = 26;

    /// <summary>DaemonLinkLog.LinkDown: a daemon link failed (timeout, protocol violation, closed).</summary>
    public const int LinkDown = 300;

    /// <summary>DaemonLinkLog.Joined: a daemon link came up (at start, or a daemon rejoining).</summary>
    public const int DaemonJoined = 301;

    /// <summary>DaemonLinkLog.ConnectFailed: an attempt to reach a daemon failed (timeout, refused, closed).</summary>
    public const int DaemonConnectFailed = 302;

    /// <summary>SlabLog.Placed: a slab was placed on a daemon.</summary>
    public const int SlabPlaced = 350;

    /// <summary>SlabLog.NotPlaced: no daemon took a slab; it stays on the backup disk and is retried with back-off.</summary>
    public const int SlabNotPlaced = 352;

    /// <summary>SlabLog.Probation: a daemon whose link failed rejoined and takes no new slabs for a while.</summary>
    public const int DaemonProbation = 360;

    /// <summary>SlabLog.Drained: a daemon that left the portal has its slabs moved off it and its link closed.</summary>
    public const int DaemonDrained = 363;

    /// <summary>SlabLog.DrainCancelled: a daemon came back into the portal before its drain ended.</summary>
    public const int DrainCancelled = 364;

    /// <summary>PortalLog.Changed: a portal reading changed the daemons (joining, draining).</summary>
    public const int PortalChanged = 28;

    /// <summary>PortalLog.KeptLastGood: a portal reading was bad (DNS failure, NXDOMAIN, empty, a file error); the last good list stays.</summary>
    public const int PortalKeptLastGood = 29;

    /// <summary>PortalLog.ReloadRequested: SIGHUP asked for the portal to be read now.</summary>
    public const int PortalReloadRequested = 30;

    /// <summary>SlabLog.Unmapped: a slab left its daemon and is served from the backup disk.</summary>
    public const int SlabUnmapped = 351;

    /// <summary>SlabLog.BackupDiskError: the backup disk failed an I/O.</summary>
    public const int BackupDiskError = 354;

    /// <summary>SlabLog.DiskErrorsSuppressed: backup disk errors held back by the log throttle, counted.</summary>
    public const int BackupDiskErrorsSuppressed = 365;

    /// <summary>BackupLog.DirectRefused: the backup disk's file system refuses O_DIRECT; it is used through the page cache.</summary>
    public const int BackupDirectRefused = 381;

    /// <summary>DonorLog.HandshakeRefused: the daemon refused a peer in the handshake (key, order), naming it.</summary>
    public const int HandshakeRefused = 23;

    /// <summary>DonorLog.Insecure: a daemon started with --insecure-no-auth.</summary>
    public const int DonorInsecure = 24;

    /// <summary>DaemonLinkLog.AuthFailed: a daemon failed the key check (or refused this server's), naming it.</summary>
    public const int DaemonAuthFailed = 304;

    /// <summary>DaemonLinkLog.Insecure: the server connects to a daemon without the key.</summary>
    public const int LinkInsecure = 305;

    /// <summary>SlabLog.PageOpenFailed: a page a daemon returned failed to open and was read from the disk.</summary>
    public const int PageOpenFailed = 356;

    /// <summary>SlabLog.DaemonUntrusted: a daemon whose slabs returned pages that fail to open was failed.</summary>
    public const int DaemonUntrusted = 357;
}
