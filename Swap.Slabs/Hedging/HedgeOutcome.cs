using Swap.Daemon.Protocol;

namespace Swap.Slabs.Hedging;

/// <summary>
/// How a <see cref="HedgedRead"/> ended: who won, and the status the daemon answered if it refused the read
/// (STALE, say) before or after losing, so the caller unmaps the slab as an unhedged read would.
/// </summary>
internal readonly record struct HedgeOutcome(HedgeWinner Winner, DaemonStatus? Refused);
