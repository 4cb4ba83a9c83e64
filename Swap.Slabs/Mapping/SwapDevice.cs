using Swap.Common.Tasks;
using System.Net;
using System.Runtime.CompilerServices;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Swap.BlockDevices;
using Swap.Slabs.Backup;
using Swap.Slabs.Hedging;
using Swap.Slabs.Placement;
using Swap.Slabs.Remote;
using Swap.Slabs.Sealing;

namespace Swap.Slabs.Mapping;

/// <summary>
/// The swap device: an address space cut into slabs, each placed on a donor daemon (power of two choices) and every
/// page mirrored on the backup disk. Writes go to the daemon and the disk; a write is acknowledged when the disk has
/// it and the daemon has been sent it, and its pages become valid on the daemon when the daemon answers.
/// Reads go to the daemon when the page is valid there, else to the disk. Losing a daemon, an eviction, a timeout or
/// a daemon that breaks the protocol unmaps its slabs at once (reads fall back to the disk, no error reaches the
/// client) and the slabs are re-placed in the background, their pages copied back from the disk.
/// This type routes the block-device requests and composes the parts that do each job: <see cref="SlabTable"/>,
/// <see cref="ReadPath"/>, <see cref="WritePath"/>, <see cref="DiscardPath"/>, <see cref="RemoteWrites"/>,
/// <see cref="SlabPlacer"/>, <see cref="SlabFiller"/>, <see cref="DaemonPool"/> and <see cref="ReportedDisk"/>.
/// With <see cref="SwapDeviceOptions.SealPages"/> (the default) every page leaves sealed by a <see cref="PageSealer"/>
/// whose key only this object holds; <see cref="SealedReads"/> and <see cref="OpenFailures"/> handle what comes back.
/// </summary>
public sealed class SwapDevice : IBlockDevice
{
    internal const int PageShift = SlabTable.PageShift;
    internal const int PageSize = SlabTable.PageSize;

    /// <summary>Size of the buffer that copies a slab's pages from the backup disk to its new daemon.</summary>
    public const int CopyChunkSize = SlabFiller.CopyChunkSize;

    private readonly SwapDeviceOptions _options;
    private readonly SlabTable _table;
    private readonly ReportedDisk _disk;
    private readonly SlabPlacer _placer;
    private readonly DaemonPool _daemons;
    private readonly ReadPath _reads;
    private readonly WritePath _writes;
    private readonly RemoteWrites _remoteWrites;
    private readonly DiscardPath _discards;
    private readonly PageSealer? _sealer;
    private readonly OpenFailures _openFailures;
    private readonly ReadHedger? _hedger;
    private readonly Prefetcher? _prefetcher;
    private readonly CancellationTokenSource _stop = new();
    private int _disposed;

    public SwapDevice(long size, IBackupStore disk, IReadOnlyList<(string Name, EndPoint EndPoint)> daemons, SwapDeviceOptions options,
        TimeProvider? time = null, ILoggerFactory? loggerFactory = null)
    {
        var errors = options.Validate();
        if (errors.Count > 0)
        {
            throw new ArgumentException(string.Join("; ", errors), nameof(options));
        }

        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(size);
        if (size % PageSize != 0)
        {
            throw new ArgumentException($"the size must be a multiple of {PageSize}", nameof(size));
        }
        if (disk.Size < size)
        {
            throw new ArgumentException($"the backup disk holds {disk.Size} bytes, the device needs {size}", nameof(disk));
        }

        Size = size;
        _options = options;
        time ??= TimeProvider.System;
        var logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger("Swap.Slabs.SwapDevice");
        _table = new SlabTable(size, options.SlabSize);
        Metrics = new SlabMetrics(time);
        _disk = new ReportedDisk(disk, Metrics, logger, time);
        var random = new LockedRandom(options.Seed);
        var clientId = options.ClientId != 0 ? options.ClientId : (ulong)Random.Shared.NextInt64(1, long.MaxValue);
        _sealer = options.SealPages ? PageSealer.Create(size >> PageShift) : null;
        if (_sealer is not null)
        {
            SlabLog.Sealing(logger, _sealer.AlgorithmName, _sealer.Versions.Pages * sizeof(uint));
        }
        else
        {
            SlabLog.NotSealing(logger);
        }

        var filler = new SlabFiller(_table, _disk, options.ParallelFills, _sealer, time, logger);
        var probation = new DaemonProbation(daemons.Count, options.RejoinProbation, options.PlacementRetryMaxDelay, time);
        var members = new DaemonMembers();
        _placer = new SlabPlacer(_table, new DaemonChooser(members, options.DonorSlabSize, random, probation), filler, options, random, time, logger, _stop.Token);
        _daemons = new DaemonPool(daemons, (name, endPoint) => new DaemonEndpoint(name, endPoint, clientId, options.Links, time, logger),
            members, _table, _placer, probation, options.DrainTimeout, JoinWait(options), time, logger, _stop.Token);
        _openFailures = new OpenFailures(_placer, time, logger);
        _hedger = CreateHedger(options, _disk, time, logger);
        _reads = new ReadPath(_table, _disk, _placer, _sealer is null ? null : new SealedReads(_table, _sealer, _openFailures, _placer, _hedger), _hedger);
        _remoteWrites = new RemoteWrites(_table, _placer);
        _writes = new WritePath(_table, _disk, _remoteWrites, _placer, _sealer);
        _discards = new DiscardPath(_table, _disk, _sealer is not null);
        if (options.PrefetchCacheSize > 0)
        {
            _prefetcher = new Prefetcher(_table, _reads, size, (int)(options.PrefetchCacheSize >> PageShift), options.PrefetchRate, time);
            _placer.Unmapped = _prefetcher.DropSlab;
        }

        Metrics.Observe(this, _daemons, _placer, _reads, _openFailures);
    }

    /// <summary>The slab layer's instruments (meter <see cref="SlabMetrics.MeterName"/>), disposed with the device.</summary>
    public SlabMetrics Metrics { get; }

    public long Size { get; }

    /// <summary>The prefetcher (null when off), for tests.</summary>
    internal Prefetcher? Prefetcher => _prefetcher;

    /// <summary>The hedged reads' pool and counters (null when off), for tests.</summary>
    internal ReadHedger? Hedger => _hedger;

    public BlockDeviceCapabilities Capabilities =>
        BlockDeviceCapabilities.Flush | BlockDeviceCapabilities.Fua | BlockDeviceCapabilities.Trim |
        BlockDeviceCapabilities.WriteZeroes | BlockDeviceCapabilities.FastZero | BlockDeviceCapabilities.MultiConn;

    public int MinimumBlockSize => 1;

    public long SlabSize => _options.SlabSize;

    public IReadOnlyList<DaemonEndpoint> Daemons => _daemons.Daemons;

    /// <summary>The AEAD pages are sealed with ("AES-256-GCM", "ChaCha20-Poly1305"), or null when sealing is off.</summary>
    public string? Sealing => _sealer?.AlgorithmName;

    /// <summary>Starts connecting to the daemons; the device serves from the disk until they answer.</summary>
    public void Start() => _daemons.Start();

    /// <summary>
    /// Makes <paramref name="daemons"/> the donors (a portal reload): a new one is connected and takes slabs as soon as
    /// its link is up; one no longer listed is drained (its slabs move to the others, or wait on the backup disk when
    /// none has room; no request fails and none reads a stale copy) and then its link is closed. Daemons are told
    /// apart by name.
    /// </summary>
    public DaemonSetChange SetDaemons(IReadOnlyList<(string Name, EndPoint EndPoint)> daemons) => _daemons.Apply(daemons);

    /// <summary>Answers a READ at once when the prefetcher holds all its pages; false: call <see cref="ReadAsync"/>.</summary>
    public bool TryRead(long offset, Span<byte> destination)
    {
        if (_prefetcher is not { } prefetcher || !prefetcher.TryServe(offset, destination))
        {
            return false;
        }

        prefetcher.Observe(offset, destination.Length, hit: true);
        return true;
    }

    /// <summary>
    /// Every write without FUA is done here, on the caller's thread: the pages go to the daemon (sent, not awaited)
    /// and to the disk, and the write is acknowledged once the disk has them. That is all an acknowledged page needs
    /// to survive a daemon loss or a server crash; the daemon's answer only decides, later, whether reads may take
    /// the pages from it (see <see cref="RemoteWrites.Settle"/>). Until then they read from the disk.
    /// </summary>
    public bool TryWrite(long offset, ReadOnlySpan<byte> source, bool fua)
    {
        if (fua)
        {
            return false;
        }

        _writes.Write(offset, source);
        _prefetcher?.Invalidate(offset, source.Length);
        return true;
    }

    public bool TakesWriteBatches => true;

    public bool TryWriteBatch(ReadOnlySpan<BlockWrite> writes, Span<BlockDeviceException?> errors)
    {
        if (!_writes.TryWriteBatch(writes, errors))
        {
            return false;
        }

        if (_prefetcher is { } prefetcher)
        {
            foreach (var write in writes)
            {
                prefetcher.Invalidate(write.Offset, write.Data.Length);
            }
        }

        return true;
    }

    public ValueTask ReadAsync(long offset, Memory<byte> destination, CancellationToken cancellationToken)
    {
        // The READ goes out first; the prefetches it predicts follow it on the wire.
        var read = _reads.ReadAsync(offset, destination);
        _prefetcher?.Observe(offset, destination.Length, hit: false);
        return read;
    }

    [AsyncMethodBuilder(typeof(RetainedValueTaskMethodBuilder))]
    public async ValueTask WriteAsync(long offset, ReadOnlyMemory<byte> source, bool fua, CancellationToken cancellationToken)
    {
        _writes.Write(offset, source.Span);
        _prefetcher?.Invalidate(offset, source.Length);
        if (fua)
        {
            // The flush waits on the disk: off the caller's thread.
            await new ThreadPoolHop();
            _disk.Flush();
        }
    }

    public ValueTask FlushAsync(CancellationToken cancellationToken)
    {
        try
        {
            _disk.Flush();
            return ValueTask.CompletedTask;
        }
        catch (BlockDeviceException ex)
        {
            // Failures travel in the ValueTask, as from every other operation.
            return ValueTask.FromException(ex);
        }
    }

    public ValueTask TrimAsync(long offset, long length, bool fua, CancellationToken cancellationToken) =>
        DiscardAsync(offset, length, writeZeroes: false, fua);

    public ValueTask WriteZeroesAsync(long offset, long length, bool noHole, bool fastOnly, bool fua, CancellationToken cancellationToken)
    {
        if (noHole && fastOnly)
        {
            return ValueTask.FromException(new BlockDeviceException(BlockDeviceError.NotSupported, "zeroing without a hole is not faster than writing"));
        }

        return DiscardAsync(offset, length, writeZeroes: noHole, fua);
    }

    /// <summary>A TRIM or WRITE_ZEROES; the prefetcher forgets the range before and again once it is done.</summary>
    private ValueTask DiscardAsync(long offset, long length, bool writeZeroes, bool fua)
    {
        if (_prefetcher is not { } prefetcher)
        {
            return _discards.DiscardAsync(offset, length, writeZeroes, fua);
        }

        prefetcher.Invalidate(offset, length);
        return InvalidatedAfterAsync(_discards.DiscardAsync(offset, length, writeZeroes, fua), prefetcher, offset, length);
    }

    [AsyncMethodBuilder(typeof(RetainedValueTaskMethodBuilder))]
    private static async ValueTask InvalidatedAfterAsync(ValueTask discard, Prefetcher prefetcher, long offset, long length)
    {
        try
        {
            await discard.ConfigureAwait(false);
        }
        finally
        {
            prefetcher.Invalidate(offset, length);
        }
    }

    public int GetAllocation(long offset, long length, Span<AllocationExtent> extents)
    {
        var onDisk = _table.OnDisk;
        var count = 0;
        var end = offset + length;
        while (offset < end && count < extents.Length)
        {
            var page = offset >> PageShift;
            var written = onDisk.Get(page);
            var runEnd = Math.Min(end, onDisk.NextDifferent(page, onDisk.Pages, written) << PageShift);
            extents[count++] = new AllocationExtent(runEnd - offset, Hole: !written, Zero: !written);
            offset = runEnd;
        }

        return count;
    }

    /// <summary>Slabs with at least one page written (the ones placement wants on a daemon).</summary>
    public int SlabsWithData()
    {
        var count = 0;
        for (var slab = 0; slab < _table.Count; slab++)
        {
            count += _table.HasData(slab) ? 1 : 0;
        }

        return count;
    }

    /// <summary>Where the device's pages are right now.</summary>
    public SwapDeviceStats GetStats()
    {
        var members = _daemons.Members;
        var slabs = new int[members.Length];
        var remote = new long[members.Length];
        int mapped = 0, active = 0;
        long remoteElsewhere = 0;
        for (var slab = 0; slab < _table.Count; slab++)
        {
            if (_table.Mapping(slab) is not { Usable: true } mapping)
            {
                continue;
            }

            mapped++;
            active += mapping.State == SlabState.Active ? 1 : 0;
            var index = Array.FindIndex(members, m => m.Endpoint == mapping.Daemon);
            if (index < 0)
            {
                // Its daemon was drained and closed this instant: the mapping dies with the link.
                remoteElsewhere += mapping.Valid.Count();
                continue;
            }

            slabs[index]++;
            remote[index] += mapping.Valid.Count();
        }

        var usage = new DaemonUsage[members.Length];
        for (var i = 0; i < usage.Length; i++)
        {
            var daemon = members[i].Endpoint;
            var link = daemon.Link;
            var median = link?.ReadLatency.EstimateNanoseconds ?? -1;
            var bound = link is not null && _hedger is not null ? (long)_hedger.Bound(link.ReadLatency).TotalMicroseconds : -1;
            usage[i] = new DaemonUsage(daemon.Name, link?.IsAlive == true, slabs[i], remote[i], _openFailures.CountOf(daemon),
                median < 0 ? -1 : median / 1000, bound, members[i].Draining);
        }

        return new SwapDeviceStats(_table.Count, mapped, active, _table.OnDisk.Count(), remote.Sum() + remoteElsewhere, usage, _openFailures.Count,
            _hedger?.Started ?? 0, _hedger?.WonByDisk ?? 0, _hedger?.WonByDaemon ?? 0, _reads.BytesFromDaemons, _reads.BytesFromDisk,
            _table.Unsent.Count(), _remoteWrites.QueueFull,
            _prefetcher?.Hits ?? 0, _prefetcher?.Misses ?? 0, _prefetcher?.Issued ?? 0, _prefetcher?.Wasted ?? 0);
    }

    /// <summary>Stops placement, closes every daemon link and the backup disk.</summary>
    public async ValueTask StopAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _placer.Stop();
        await _stop.CancelAsync().ConfigureAwait(false);
        await _daemons.StopAsync().ConfigureAwait(false);
        _hedger?.Dispose();
        _disk.Dispose();
        Metrics.Dispose();
        _sealer?.Dispose();
    }

    public void Dispose() => StopAsync().AsTask().GetAwaiter().GetResult();

    /// <summary>How long a drain waits for the daemons that joined with it: two connect attempts, and at least 5 s (a loaded host).</summary>
    private static TimeSpan JoinWait(SwapDeviceOptions options) =>
        TimeSpan.FromTicks(Math.Max(options.Links.ConnectTimeout.Ticks * 2, TimeSpan.FromSeconds(5).Ticks));

    /// <summary>The hedger when hedged reads are on; its cap stays under half the daemon timeout, which fails the link anyway.</summary>
    private static ReadHedger? CreateHedger(SwapDeviceOptions options, ReportedDisk disk, TimeProvider time, ILogger logger)
    {
        if (!options.HedgeReads)
        {
            HedgeLog.NotHedging(logger);
            return null;
        }

        var cap = TimeSpan.FromTicks(Math.Min(ReadHedger.DefaultCap.Ticks, options.Links.RequestTimeout.Ticks / 2));
        HedgeLog.Hedging(logger, ReadHedger.Multiplier, options.HedgeFloor.TotalMicroseconds, (cap > options.HedgeFloor ? cap : options.HedgeFloor).TotalMilliseconds);
        return new ReadHedger(disk, options.HedgeFloor, cap, time);
    }
}
