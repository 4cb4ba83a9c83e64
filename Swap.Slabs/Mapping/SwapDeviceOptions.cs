using Swap.Slabs.Remote;
using Swap.Slabs.Sealing;

namespace Swap.Slabs.Mapping;

/// <summary>How a <see cref="SwapDevice"/> spreads its slabs over daemons; the server's slab-mode options.</summary>
public sealed record SwapDeviceOptions
{
    public const long MinimumSlabSize = 1L << 20;
    public const long MaximumSlabSize = 16L << 30;

    /// <summary>Bytes per slab, a power of two (Infiniswap: 1 GiB).</summary>
    public long SlabSize { get; init; } = 1L << 30;

    public DaemonLinkSettings Links { get; init; } = new();

    /// <summary>A slab no daemon could take is retried after this, doubling up to <see cref="PlacementRetryMaxDelay"/>.</summary>
    public TimeSpan PlacementRetryDelay { get; init; } = TimeSpan.FromMilliseconds(500);

    /// <summary>Also the longest probation of a daemon that keeps failing (<see cref="RejoinProbation"/>).</summary>
    public TimeSpan PlacementRetryMaxDelay { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// A daemon whose link failed takes no new slabs until it has been back this long; the wait doubles with each
    /// failure after a short stay, up to <see cref="PlacementRetryMaxDelay"/>, so a flapping link does not make slabs
    /// move back and forth (each move copies the slab from the backup disk). Zero: no probation.
    /// </summary>
    public TimeSpan RejoinProbation { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// A daemon that left the portal is closed once its slabs are on other daemons (or waiting on the backup disk for
    /// room), or after this long, whichever comes first; its slabs are off it (on the disk) from the start either way.
    /// </summary>
    public TimeSpan DrainTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Slabs being copied from disk to a new daemon at the same time.</summary>
    public int ParallelFills { get; init; } = 2;

    /// <summary>Seed for the random choices of placement; null for a random seed.</summary>
    public int? Seed { get; init; }

    /// <summary>Identifies this server to daemons (HELLO); random when 0.</summary>
    public ulong ClientId { get; init; }

    /// <summary>
    /// Seal every page before it leaves the server (AEAD under a key only this process holds; docs/security.md).
    /// Off is for measuring what sealing costs, never for use: a donor then reads and can change every page.
    /// </summary>
    public bool SealPages { get; init; } = true;

    /// <summary>
    /// Hedged reads: a READ its daemon has not answered within a bound drawn from that link's recent latencies is read
    /// from the backup disk too, and the first answer wins (a lost segment then costs the bound, not TCP's 200 ms).
    /// </summary>
    public bool HedgeReads { get; init; } = true;

    /// <summary>The least a hedging bound can be, however fast the link has been.</summary>
    public TimeSpan HedgeFloor { get; init; } = TimeSpan.FromMicroseconds(100);

    /// <summary>
    /// Bytes of the prefetch cache (in locked memory, made at start): pages read ahead of a swap-in stream that shows a
    /// trend (sequential, reverse, strided). Zero (the default) turns prefetching off: it pays where the device sees the
    /// swap-in stream in order (page-cluster 0, files and tmpfs read back in order), not at the kernel's default
    /// page-cluster, and its locked memory counts on a small host (README, "Prefetching swap-in").
    /// </summary>
    public long PrefetchCacheSize { get; init; }

    /// <summary>Donor bytes a second prefetching may add at most (a token bucket; reads past it are not prefetched).</summary>
    public long PrefetchRate { get; init; } = 256L << 20;

    /// <summary>Bytes of one slab on its donor: the slab size, or 257/256 of it when pages are sealed (a 16-byte tag a page).</summary>
    public long DonorSlabSize => SealPages ? SealedPage.DonorSlabSize(SlabSize) : SlabSize;

    /// <summary>Every problem, each starting with its key; empty when valid.</summary>
    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        if (SlabSize < MinimumSlabSize || SlabSize > MaximumSlabSize || (SlabSize & (SlabSize - 1)) != 0)
        {
            errors.Add($"SlabSize: {SlabSize} must be a power of two from 1MiB to 16GiB (e.g. 1GiB)");
        }

        CheckPositive(errors, "DaemonTimeout", Links.RequestTimeout);
        CheckPositive(errors, "ConnectTimeout", Links.ConnectTimeout);
        CheckPositive(errors, "HeartbeatInterval", Links.HeartbeatInterval);
        if (HedgeFloor < TimeSpan.FromMicroseconds(10) || HedgeFloor > TimeSpan.FromSeconds(1))
        {
            errors.Add("HedgeFloorMicroseconds: must be between 10 and 1000000 (e.g. 100)");
        }

        if (PrefetchCacheSize < 0 || PrefetchCacheSize > (1L << 30) || PrefetchCacheSize % SlabTable.PageSize != 0)
        {
            errors.Add($"PrefetchCache: {PrefetchCacheSize} must be a multiple of 4KiB from 0 (off) to 1GiB (e.g. 16MiB)");
        }

        if (PrefetchRate < (1L << 20))
        {
            errors.Add($"PrefetchRate: {PrefetchRate} bytes a second must be at least 1MiB (e.g. 256MiB)");
        }

        if (ParallelFills < 1)
        {
            errors.Add("ParallelFills: must be at least 1");
        }

        return errors;
    }

    private static void CheckPositive(List<string> errors, string key, TimeSpan value)
    {
        if (value <= TimeSpan.Zero)
        {
            errors.Add($"{key}: must be positive (e.g. 2s)");
        }
    }
}
