namespace Swap.Slabs.Mapping;

/// <summary>
/// Where a swap device's pages are: per daemon and on the backup disk only; and how many page runs came back from a
/// daemon failing to open (each read from the backup disk instead); and the hedged reads: started (the daemon missed
/// its bound and the disk was asked too), won by the disk, won by the daemon after all; the pages whose acknowledged
/// writes still wait in a link's write-behind queue, and the write pieces that found a queue full (left disk-only);
/// the prefetcher's pages: taken by READs (hits), fetched by READs (misses), asked of donors ahead (issued), never read
/// (wasted: evicted, invalidated, dropped with their slab or discarded on landing).
/// </summary>
public sealed record SwapDeviceStats(int Slabs, int MappedSlabs, int ActiveSlabs, long PagesWritten, long PagesRemote, IReadOnlyList<DaemonUsage> Daemons,
    long OpenFailures = 0, long HedgedReads = 0, long HedgeWonByDisk = 0, long HedgeWonByDaemon = 0, long ReadBytesFromDaemons = 0, long ReadBytesFromDisk = 0,
    long PagesUnsent = 0, long WritesQueueFull = 0, long PrefetchHits = 0, long PrefetchMisses = 0, long PrefetchIssued = 0, long PrefetchWasted = 0)
{
    /// <summary>Share of prefetched pages that a READ took (0 before any prefetch).</summary>
    public double PrefetchAccuracy => PrefetchIssued == 0 ? 0 : (double)PrefetchHits / PrefetchIssued;

    /// <summary>Written pages whose only current copy is on the backup disk.</summary>
    public long PagesDiskOnly => PagesWritten - PagesRemote;
}

/// <summary>
/// One daemon's share of a swap device, the page runs it returned that failed to open, its recent median READ latency
/// (µs; -1 before enough reads), the bound after which its reads are hedged (µs; -1 without hedging), and whether it
/// is draining (left the portal: its slabs are moving off it before its link closes).
/// </summary>
public sealed record DaemonUsage(string Name, bool Up, int Slabs, long PagesRemote, long OpenFailures = 0, long ReadMedianUs = -1, long HedgeBoundUs = -1,
    bool Draining = false)
{
    /// <summary>"up", "down" or "draining".</summary>
    public string State => Draining ? "draining" : Up ? "up" : "down";
}
