namespace Swap.Slabs.Remote;

/// <summary>Timeouts of one daemon connection; part of the slab-mode options, given to every <see cref="DaemonLink"/>.</summary>
public sealed record DaemonLinkSettings
{
    /// <summary>A request unanswered for this long marks the daemon failed: its slabs go to disk at once.</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(2);

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
