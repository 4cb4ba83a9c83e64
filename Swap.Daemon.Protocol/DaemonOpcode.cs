namespace Swap.Daemon.Protocol;

/// <summary>Operations of the server ↔ daemon protocol (docs/daemon-protocol.md).</summary>
public enum DaemonOpcode : ushort
{
    Hello = 1,
    QueryFree = 2,
    AllocSlab = 3,
    Read = 4,
    Write = 5,
    Trim = 6,
    FreeSlab = 7,
    Stats = 8,
    Evicted = 9,
}

/// <summary>Result of a daemon request.</summary>
public enum DaemonStatus : ushort
{
    Ok = 0,
    Stale = 1,
    NoSpace = 2,
    Invalid = 3,
    Limit = 4,
    Io = 5,
    Version = 6,
    HelloFirst = 7,
}
