using System.Numerics;
using Swap.Common.Configuration;
using Swap.Common.Security;

namespace Swap.Donor;

/// <summary>Everything that configures one donor daemon; bound from configuration or built directly by tests.</summary>
public sealed class DonorOptions
{
    /// <summary>TCP endpoint HOST:PORT; port 0 picks a free port.</summary>
    public string Listen { get; set; } = "127.0.0.1:9400";

    /// <summary>HOST:PORT serving the metrics in Prometheus' text format (GET /metrics); null for none.</summary>
    public string? MetricsListen { get; set; }

    /// <summary>File rewritten every second with JSON of the daemon's state (memory lent, clients, evictions); null for none.</summary>
    public string? StatusFile { get; set; }

    /// <summary>
    /// The cluster key file (swapnbd-daemon keygen): only servers that prove this key in the handshake are served.
    /// Required unless <see cref="InsecureNoAuth"/>.
    /// </summary>
    public string? AuthKeyFile { get; set; }

    /// <summary>Serve without the cluster key: whoever reaches the port can read, write and free every server's slabs.</summary>
    public bool InsecureNoAuth { get; set; }

    /// <summary>Most bytes lent at once, each slab counted at its full size (Infiniswap's MAX_FREE_MEM_GB).</summary>
    public long MaxMemory { get; set; } = 8L << 30;

    /// <summary>Free memory (MemAvailable) kept for the host; below it slabs are evicted (FREE_MEM_EVICT_THRESHOLD).</summary>
    public long Headroom { get; set; } = 1L << 30;

    /// <summary>Slabs one client may hold (MAX_MR_SIZE_GB, in slabs).</summary>
    public int MaxSlabsPerClient { get; set; } = 64;

    /// <summary>Distinct client ids served at once, those in their grace period included (MAX_CLIENT).</summary>
    public int MaxClients { get; set; } = 32;

    /// <summary>
    /// Connections past their HELLO at most (each has a thread and three 256 KiB buffers); a connection accepted
    /// while all are taken is closed at once.
    /// </summary>
    public int MaxConnections { get; set; } = 256;

    /// <summary>
    /// Connections that have not finished their HELLO at most, apart from <see cref="MaxConnections"/>: a newcomer
    /// beyond it closes the oldest, so connections that never say HELLO cannot keep a server (or its reconnect) out.
    /// </summary>
    public int MaxHandshakes { get; set; } = 16;

    /// <summary>
    /// A connection that has not said HELLO within this is closed: a port scanner, a stuck or foreign client does
    /// not hold one of <see cref="MaxConnections"/> (and its thread and buffers) for good.
    /// </summary>
    public TimeSpan HelloTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How long a client whose last connection closed keeps its slabs for a reconnect.</summary>
    public TimeSpan GracePeriod { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How often MemAvailable is read and eviction considered.</summary>
    public TimeSpan MonitorInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>E: slabs evicted per round.</summary>
    public int EvictBatch { get; set; } = 1;

    /// <summary>E′: extra slabs sampled per round; the E least recently active of the E+E′ sampled go.</summary>
    public int EvictExtraSamples { get; set; } = 2;

    /// <summary>
    /// Weight of a new MemAvailable reading in its exponential moving average (1 = no smoothing). Smoothing keeps a
    /// short spike (a page-cache flush, a burst of allocations) from evicting slabs that would be wanted back at once.
    /// </summary>
    public double MemAvailableSmoothing { get; set; } = 0.5;

    /// <summary>Smallest slab size ALLOC_SLAB accepts (a power of two).</summary>
    public long MinSlabSize { get; set; } = 1L << 20;

    /// <summary>Largest slab size ALLOC_SLAB accepts (a power of two).</summary>
    public long MaxSlabSize { get; set; } = 16L << 30;

    /// <summary>
    /// mlockall at start, so lent memory is not swapped out on this host (a remote page read would wait on the donor's
    /// disk). Applied by the swapnbd-daemon executable: locking is process-wide, so an embedding host decides for itself.
    /// </summary>
    public bool LockMemory { get; set; } = true;

    private const long SlabSizeFloor = 1L << 20;
    private const long SlabSizeCeiling = 16L << 30;

    /// <summary>Every problem with these options, each starting with the key it concerns; empty when valid.</summary>
    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        if (!EndpointParser.TryParse(Listen, out _))
        {
            errors.Add($"Listen: '{Listen}' is not HOST:PORT (e.g. 127.0.0.1:9400 or [::1]:9400)");
        }

        if (MetricsListen is not null && MetricsEndpoint.Check("MetricsListen", MetricsListen) is { } metricsError)
        {
            errors.Add(metricsError);
        }

        if (StatusFile is not null && Common.Status.StatusFile.Check("StatusFile", StatusFile, Status.DonorStatusView.DefaultPath) is { } statusError)
        {
            errors.Add(statusError);
        }

        if (AuthKeyFile is null)
        {
            if (!InsecureNoAuth)
            {
                errors.Add("AuthKeyFile: the daemon serves only servers that hold the cluster key: give --auth-key-file PATH " +
                    "(create it once with swapnbd-daemon keygen PATH, the same file on every server and donor), " +
                    "or --insecure-no-auth to serve whoever reaches its port");
            }
        }
        else if (InsecureNoAuth)
        {
            errors.Add("InsecureNoAuth: --insecure-no-auth and --auth-key-file exclude each other; drop one");
        }
        else if (ClusterKeyFile.Problem(AuthKeyFile) is { } problem)
        {
            errors.Add($"AuthKeyFile: --auth-key-file {problem}");
        }

        if (MaxMemory <= 0)
        {
            errors.Add("MaxMemory: must be positive (e.g. 8GiB)");
        }

        if (Headroom < 0)
        {
            errors.Add("Headroom: must not be negative (e.g. 1GiB)");
        }

        if (MaxSlabsPerClient is < 1 or > 65536)
        {
            errors.Add("MaxSlabsPerClient: must be between 1 and 65536");
        }

        if (MaxClients is < 1 or > 4096)
        {
            errors.Add("MaxClients: must be between 1 and 4096");
        }

        if (MaxConnections is < 1 or > 65536)
        {
            errors.Add("MaxConnections: must be between 1 and 65536");
        }

        if (MaxHandshakes is < 1 or > 65536)
        {
            errors.Add("MaxHandshakes: must be between 1 and 65536");
        }

        if (HelloTimeout <= TimeSpan.Zero)
        {
            errors.Add("HelloTimeout: must be positive (seconds)");
        }

        if (GracePeriod < TimeSpan.Zero)
        {
            errors.Add("GracePeriod: must not be negative (seconds)");
        }

        if (MonitorInterval <= TimeSpan.Zero)
        {
            errors.Add("MonitorInterval: must be positive (seconds)");
        }

        if (EvictBatch is < 1 or > 1024)
        {
            errors.Add("EvictBatch: must be between 1 and 1024");
        }

        if (EvictExtraSamples is < 0 or > 1024)
        {
            errors.Add("EvictExtraSamples: must be between 0 and 1024");
        }

        if (!(MemAvailableSmoothing > 0 && MemAvailableSmoothing <= 1))
        {
            errors.Add("MemAvailableSmoothing: must be above 0 and at most 1 (1 = no smoothing)");
        }

        if (!IsSlabSizeInRange(MinSlabSize))
        {
            errors.Add("MinSlabSize: must be a power of two from 1MiB to 16GiB");
        }

        if (!IsSlabSizeInRange(MaxSlabSize))
        {
            errors.Add("MaxSlabSize: must be a power of two from 1MiB to 16GiB");
        }
        else if (MaxSlabSize < MinSlabSize)
        {
            errors.Add("MaxSlabSize: must not be below MinSlabSize");
        }

        return errors;
    }

    /// <summary>
    /// True if ALLOC_SLAB and QUERY_FREE accept <paramref name="size"/>: a power of two from MinSlabSize to MaxSlabSize,
    /// or such a size × 257/256, the slab of a server that seals its pages (each 4096-byte page stored with its
    /// 16-byte tag). The daemon stores bytes either way; the size is only checked and counted.
    /// </summary>
    public bool AcceptsSlabSize(ulong size)
    {
        var plain = size % 257 == 0 && BitOperations.IsPow2(size / 257) ? size / 257 * 256 : size;
        return BitOperations.IsPow2(plain) && plain >= (ulong)MinSlabSize && plain <= (ulong)MaxSlabSize;
    }

    private static bool IsSlabSizeInRange(long size) => size is >= SlabSizeFloor and <= SlabSizeCeiling && BitOperations.IsPow2(size);
}
