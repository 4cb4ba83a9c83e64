using Swap.Common.Security;

namespace Swap.Slabs.Remote;

/// <summary>The key and the timeouts of one daemon connection; part of the slab-mode options, given to every <see cref="DaemonLink"/>.</summary>
public sealed record DaemonLinkSettings
{
    /// <summary>
    /// The cluster key this server proves and daemons must prove in the handshake. Required unless
    /// <see cref="InsecureNoAuth"/>: an endpoint refuses to start with neither.
    /// </summary>
    public ClusterKey? AuthKey { get; init; }

    /// <summary>Connect without the cluster key: only to daemons that run with --insecure-no-auth too.</summary>
    public bool InsecureNoAuth { get; init; }

    /// <summary>A request unanswered for this long marks the daemon failed: its slabs go to disk at once.</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>
    /// Bytes of acknowledged writes each link holds for its send thread (<see cref="WriteBehind"/>), allocated when
    /// the link comes up; writes that find it full stay on the backup disk only.
    /// </summary>
    public int WriteBehindBytes { get; init; } = 4 << 20;

    /// <summary>Connect plus HELLO must finish within this.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>An idle connection sends STATS this often, so a daemon that stalls is noticed before it is needed.</summary>
    public TimeSpan HeartbeatInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>First delay between connection attempts; it doubles (with jitter) up to <see cref="ReconnectMaxDelay"/>.</summary>
    public TimeSpan ReconnectDelay { get; init; } = TimeSpan.FromMilliseconds(100);

    public TimeSpan ReconnectMaxDelay { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>After repeated failures the circuit opens and no attempt is made for this long.</summary>
    public TimeSpan BreakDuration { get; init; } = TimeSpan.FromSeconds(2);
}
