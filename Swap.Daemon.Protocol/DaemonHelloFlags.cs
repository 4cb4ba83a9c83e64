namespace Swap.Daemon.Protocol;

/// <summary>The HELLO request's flags (u16).</summary>
[Flags]
public enum DaemonHelloFlags : ushort
{
    None = 0,

    /// <summary>
    /// The server starts afresh and will not ask for any slab it held before: the daemon frees every slab of this
    /// client id at once instead of keeping them for the grace period (a restarted server, or a link that came back
    /// after the server re-placed its slabs elsewhere).
    /// </summary>
    ReleaseSlabs = 1,

    /// <summary>
    /// The server runs without the cluster key (--insecure-no-auth): its proofs are zeros. A daemon with a key
    /// refuses it (UNAUTHORIZED), and so does a daemon without one when the bit is missing: both sides must agree.
    /// </summary>
    InsecureNoAuth = 2,

    Known = ReleaseSlabs | InsecureNoAuth,
}
