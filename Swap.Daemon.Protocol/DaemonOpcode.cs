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

    /// <summary>The server's proof of the cluster key, answering the daemon's nonce (protocol version 2).</summary>
    Auth = 10,
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

    /// <summary>Any request before the handshake (HELLO and AUTH) completed; the daemon closes the connection.</summary>
    HelloFirst = 7,

    /// <summary>
    /// The handshake failed on the key: a wrong proof, or one side runs with the key and the other without
    /// (--insecure-no-auth). The daemon closes the connection.
    /// </summary>
    Unauthorized = 8,
}
