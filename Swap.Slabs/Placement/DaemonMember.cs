using Swap.Slabs.Remote;

namespace Swap.Slabs.Placement;

/// <summary>
/// One daemon of the pool: its endpoint, a serial that never changes or returns (what <see cref="DaemonProbation"/>
/// keys on), its counters, and whether it is draining (left the portal: it takes no new slabs and its slabs move).
/// </summary>
internal sealed class DaemonMember(DaemonEndpoint endpoint, int serial)
{
    private int _draining;
    private long _joins;
    private long _failures;
    private long _evictions;

    public DaemonEndpoint Endpoint => endpoint;

    public int Serial => serial;

    public string Name => endpoint.Name;

    /// <summary>True from the moment the daemon left the portal until its link is closed (or it came back).</summary>
    public bool Draining => Volatile.Read(ref _draining) != 0;

    /// <summary>Times its link has come up (the first connect and every reconnect).</summary>
    public long Joins => Interlocked.Read(ref _joins);

    /// <summary>Times its link was lost (killed, timed out, garbage, closed).</summary>
    public long Failures => Interlocked.Read(ref _failures);

    /// <summary>Eviction notices it sent.</summary>
    public long Evictions => Interlocked.Read(ref _evictions);

    /// <summary>False if it was draining already.</summary>
    public bool StartDraining() => Interlocked.Exchange(ref _draining, 1) == 0;

    /// <summary>It is back in the portal before its drain closed it: false if it was not draining.</summary>
    public bool StopDraining() => Interlocked.Exchange(ref _draining, 0) == 1;

    public void CountJoin() => Interlocked.Increment(ref _joins);

    public void CountFailure() => Interlocked.Increment(ref _failures);

    public void CountEviction() => Interlocked.Increment(ref _evictions);
}
