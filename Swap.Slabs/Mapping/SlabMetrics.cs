using System.Diagnostics.Metrics;

namespace Swap.Slabs.Mapping;

/// <summary>
/// The slab layer's instruments (meter <see cref="MeterName"/>): backup disk latency and errors recorded as they
/// happen; everything the status file reports (daemons, slabs, pages, hedged reads, pages that failed to open) and the
/// placer's and daemon pool's counts read when a collector asks, so nothing is counted twice.
/// </summary>
public sealed class SlabMetrics : IDisposable
{
    public const string MeterName = "SwapNbd.Slabs";

    /// <summary>Backup disk latency buckets in seconds: 5 µs (page cache) to 1 s (a disk in trouble).</summary>
    public static readonly double[] DiskLatencyBuckets =
        [0.000005, 0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];

    private const long PageSize = 4096;
    private readonly Meter _meter = new(MeterName);
    private readonly Histogram<double> _diskRead;
    private readonly Histogram<double> _diskWrite;
    private readonly Counter<long> _diskErrors;
    private readonly TimeProvider _time;

    internal SlabMetrics(TimeProvider time)
    {
        _time = time;
        var advice = new InstrumentAdvice<double> { HistogramBucketBoundaries = DiskLatencyBuckets };
        _diskRead = _meter.CreateHistogram("swapnbd.backup.read.duration", "s", "backup disk reads (pread)", advice: advice);
        _diskWrite = _meter.CreateHistogram("swapnbd.backup.write.duration", "s", "backup disk writes (pwrite)", advice: advice);
        _diskErrors = _meter.CreateCounter<long>("swapnbd.backup.errors", "{error}", "backup disk operations that failed, by operation");
    }

    /// <summary>The start of a disk operation for <see cref="DiskRead"/>/<see cref="DiskWrite"/> (0 when no one listens).</summary>
    internal long DiskStart() => _diskRead.Enabled || _diskWrite.Enabled ? _time.GetTimestamp() : 0;

    internal void DiskRead(long started)
    {
        if (started != 0)
        {
            _diskRead.Record(_time.GetElapsedTime(started).TotalSeconds);
        }
    }

    internal void DiskWrite(long started)
    {
        if (started != 0)
        {
            _diskWrite.Record(_time.GetElapsedTime(started).TotalSeconds);
        }
    }

    internal void DiskError(string operation) => _diskErrors.Add(1, new KeyValuePair<string, object?>("operation", operation));

    /// <summary>Registers the instruments read from the device's own counts when a collector asks.</summary>
    internal void Observe(SwapDevice device, DaemonPool pool, SlabPlacer placer, ReadPath reads, OpenFailures openFailures)
    {
        _meter.CreateObservableCounter("swapnbd.slabs.read.size", () => new[]
        {
            new Measurement<long>(reads.BytesFromDaemons, new KeyValuePair<string, object?>("source", "daemon")),
            new Measurement<long>(reads.BytesFromDisk, new KeyValuePair<string, object?>("source", "disk")),
        }, "By", "bytes of READs answered, by where they came from: a daemon or the backup disk");
        _meter.CreateObservableGauge("swapnbd.slabs", () =>
        {
            var stats = device.GetStats();
            return new[]
            {
                new Measurement<int>(stats.Slabs, new KeyValuePair<string, object?>("state", "total")),
                new Measurement<int>(stats.MappedSlabs, new KeyValuePair<string, object?>("state", "mapped")),
                new Measurement<int>(stats.ActiveSlabs, new KeyValuePair<string, object?>("state", "active")),
                new Measurement<int>(device.SlabsWithData(), new KeyValuePair<string, object?>("state", "written")),
            };
        }, "{slab}", "slabs of the export: all, placed on a daemon, placed and filled, written to");
        _meter.CreateObservableGauge("swapnbd.slabs.placement.queue", () => Math.Max(0, device.SlabsWithData() - device.GetStats().MappedSlabs),
            "{slab}", "written slabs not on any daemon now (waiting for placement or room)");
        _meter.CreateObservableCounter("swapnbd.slabs.placements", () => placer.Placements, "{slab}", "slabs placed on a daemon (first placements and moves)");
        _meter.CreateObservableCounter("swapnbd.slabs.unmaps", () => placer.Unmaps, "{slab}", "slabs taken off a daemon (lost link, eviction, bad answer)");
        _meter.CreateObservableGauge("swapnbd.pages", () =>
        {
            var stats = device.GetStats();
            return new[]
            {
                new Measurement<long>(stats.PagesWritten * PageSize, new KeyValuePair<string, object?>("where", "backup_disk")),
                new Measurement<long>(stats.PagesRemote * PageSize, new KeyValuePair<string, object?>("where", "daemons")),
                new Measurement<long>(stats.PagesDiskOnly * PageSize, new KeyValuePair<string, object?>("where", "backup_disk_only")),
            };
        }, "By", "bytes of written pages: on the backup disk (all), current on a daemon, only on the backup disk");
        _meter.CreateObservableCounter("swapnbd.sealing.open_failures", () => openFailures.Count, "{read}",
            "page runs from a daemon that failed to open (each read from the backup disk instead)");
        _meter.CreateObservableCounter("swapnbd.hedge.reads", () =>
        {
            var stats = device.GetStats();
            return new[]
            {
                new Measurement<long>(stats.HedgedReads, new KeyValuePair<string, object?>("outcome", "started")),
                new Measurement<long>(stats.HedgeWonByDisk, new KeyValuePair<string, object?>("outcome", "won_by_disk")),
                new Measurement<long>(stats.HedgeWonByDaemon, new KeyValuePair<string, object?>("outcome", "won_by_daemon")),
            };
        }, "{read}", "hedged reads: started (a daemon missed its bound), won by the backup disk, won by the daemon");
        _meter.CreateObservableCounter("swapnbd.prefetch.pages", () =>
        {
            var stats = device.GetStats();
            return new[]
            {
                new Measurement<long>(stats.PrefetchHits, new KeyValuePair<string, object?>("outcome", "hit")),
                new Measurement<long>(stats.PrefetchMisses, new KeyValuePair<string, object?>("outcome", "miss")),
                new Measurement<long>(stats.PrefetchIssued, new KeyValuePair<string, object?>("outcome", "issued")),
                new Measurement<long>(stats.PrefetchWasted, new KeyValuePair<string, object?>("outcome", "wasted")),
            };
        }, "{page}", "prefetcher pages: READs served from its cache (hit) or past it (miss), asked of donors ahead (issued), never read (wasted)");
        _meter.CreateObservableGauge("swapnbd.daemon.up", () => PerDaemon(device, (d, _) => d.Up ? 1 : 0), "1", "1 while the daemon's link is up");
        _meter.CreateObservableGauge("swapnbd.daemon.draining", () => PerDaemon(device, (d, _) => d.Draining ? 1 : 0), "1",
            "1 while the daemon is drained: it left the portal and its slabs are moving off it before its link closes");
        _meter.CreateObservableGauge("swapnbd.daemon.slabs", () => PerDaemon(device, (d, _) => d.Slabs), "{slab}", "slabs placed on the daemon");
        _meter.CreateObservableGauge("swapnbd.daemon.pages", () => PerDaemon(device, (d, _) => d.PagesRemote * PageSize), "By",
            "bytes of pages the daemon holds current copies of");
        _meter.CreateObservableGauge("swapnbd.daemon.read.median", () => PerDaemon(device, (d, _) => d.ReadMedianUs < 0 ? double.NaN : d.ReadMedianUs / 1e6), "s",
            "the daemon's recent median READ latency (NaN before enough reads)");
        _meter.CreateObservableGauge("swapnbd.daemon.hedge.bound", () => PerDaemon(device, (d, _) => d.HedgeBoundUs < 0 ? double.NaN : d.HedgeBoundUs / 1e6), "s",
            "how long a READ waits for the daemon before the backup disk is asked too (NaN with hedging off)");
        _meter.CreateObservableCounter("swapnbd.daemon.failures", () => PerDaemon(device, (d, _) => pool.Find(d.Name)?.Failures ?? 0), "{failure}",
            "times the daemon's link was lost (killed, timed out, garbage on the wire)");
        _meter.CreateObservableCounter("swapnbd.daemon.reconnects", () => PerDaemon(device, (d, _) => Math.Max(0, (pool.Find(d.Name)?.Joins ?? 0) - 1)), "{connect}",
            "times the daemon came back after its first connect");
        _meter.CreateObservableCounter("swapnbd.daemon.evictions", () => PerDaemon(device, (d, _) => pool.Find(d.Name)?.Evictions ?? 0), "{slab}",
            "eviction notices the daemon sent (its host ran short of memory)");
    }

    private static Measurement<T>[] PerDaemon<T>(SwapDevice device, Func<DaemonUsage, int, T> value)
        where T : struct
    {
        var daemons = device.GetStats().Daemons;
        var measurements = new Measurement<T>[daemons.Count];
        for (var i = 0; i < measurements.Length; i++)
        {
            measurements[i] = new Measurement<T>(value(daemons[i], i), new KeyValuePair<string, object?>("daemon", daemons[i].Name));
        }

        return measurements;
    }

    public void Dispose() => _meter.Dispose();
}
