using Swap.Common.Status;

namespace Swap.Donor.Status;

/// <summary>
/// What the daemon's status file says (sizes in bytes): where it listens, "running" or "stopped"; the memory lent
/// (every slab at full size), of it committed (pages written, not trimmed), the cap (MaxMemory) and the headroom;
/// MemAvailable as the daemon last read it and its smoothed value (what eviction compares with the headroom);
/// per client id its slabs and connections; slabs evicted, HELLO/AUTH refused, and requests answered by opcode.
/// </summary>
public sealed record DonorStatus(
    DateTimeOffset Time,
    int Pid,
    string State,
    string DaemonId,
    IReadOnlyList<string> Listen,
    long MaxMemory,
    long BytesLent,
    long BytesCommitted,
    long Headroom,
    long MemAvailable,
    long MemAvailableSmoothed,
    int Slabs,
    int Connections,
    int Handshaking,
    long Evictions,
    long HandshakesRefused,
    IReadOnlyList<DonorClientStatus> Clients,
    IReadOnlyList<DonorRequestStatus> Requests) : IStatusSnapshot
{
    /// <summary>The state while the daemon runs (the other is <see cref="StatusFile.Stopped"/>).</summary>
    public const string Running = "running";
}
