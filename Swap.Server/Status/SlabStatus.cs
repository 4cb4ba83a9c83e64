using Swap.Slabs.Mapping;

namespace Swap.Server.Status;

/// <summary>
/// Slab mode in the status file: slabs, the written pages per donor daemon and on the backup disk, how pages are
/// sealed ("off" when not), the reads whose pages failed to open (each served from the backup disk), and the hedged
/// reads: started (a daemon missed its bound, the disk was asked too), won by the disk, won by the daemon after all;
/// and the bytes of reads answered by daemons and by the backup disk; the bytes of acknowledged writes still waiting
/// in the links' write-behind queues, and the write pieces that found a queue full (those pages stayed disk-only);
/// the prefetcher's bytes: read from its cache, read past it, asked of donors ahead of time, prefetched and never read.
/// </summary>
public sealed record SlabStatus(
    long SlabSize,
    int SlabsTotal,
    int SlabsMapped,
    int SlabsActive,
    long BytesWritten,
    long BytesRemote,
    long BytesDiskOnly,
    BackupDiskStatus BackupDisk,
    string Sealing,
    long OpenFailures,
    IReadOnlyList<DaemonStatus> Daemons,
    long HedgedReads = 0,
    long HedgeWonByDisk = 0,
    long HedgeWonByDaemon = 0,
    long ReadBytesFromDaemons = 0,
    long ReadBytesFromDisk = 0,
    long BytesUnsent = 0,
    long WritesQueueFull = 0,
    long PrefetchHitBytes = 0,
    long PrefetchMissBytes = 0,
    long PrefetchIssuedBytes = 0,
    long PrefetchWastedBytes = 0)
{
    public static SlabStatus From(SwapDevice device, string? backupDisk)
    {
        var stats = device.GetStats();
        var page = ServerStatus.PageSize;
        return new SlabStatus(
            device.SlabSize, stats.Slabs, stats.MappedSlabs, stats.ActiveSlabs,
            stats.PagesWritten * page, stats.PagesRemote * page, stats.PagesDiskOnly * page,
            new BackupDiskStatus(backupDisk ?? "", stats.PagesWritten * page, stats.PagesDiskOnly * page),
            device.Sealing ?? "off", stats.OpenFailures,
            stats.Daemons.Select(d => new DaemonStatus(d.Name, d.Up, d.Slabs, d.PagesRemote * page, d.OpenFailures, d.ReadMedianUs, d.HedgeBoundUs, d.State)).ToList(),
            stats.HedgedReads, stats.HedgeWonByDisk, stats.HedgeWonByDaemon, stats.ReadBytesFromDaemons, stats.ReadBytesFromDisk,
            stats.PagesUnsent * page, stats.WritesQueueFull,
            stats.PrefetchHits * page, stats.PrefetchMisses * page, stats.PrefetchIssued * page, stats.PrefetchWasted * page);
    }
}
