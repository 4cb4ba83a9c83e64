using Swap.Slabs.Backup;
using Swap.Slabs.Remote;

namespace Swap.Slabs.Hedging;

/// <summary>
/// Hedged reads for one swap device: a fixed pool of <see cref="HedgedRead"/> entries, the bound each link's reads
/// get (<see cref="Multiplier"/> times the link's recent median, within a floor and a cap), the sweeper that fires the
/// ones past their bound, and the counters the status file shows. A read that finds every entry taken is simply
/// not hedged.
/// </summary>
internal sealed class ReadHedger : IDisposable
{
    /// <summary>
    /// Entries per device: reads that can be hedged at once. A read the disk answered keeps its entry until its
    /// daemon's late reply lands, so a stalled link holds one entry for every read sent to it during the stall: at
    /// 2 % loss and QD32 over 4 connections, 256 entries ran out within the first 200 ms stall and the reads after
    /// waited for TCP's retransmission (p99 202 ms). The buffers held are bounded by <see cref="MaxHeldBytes"/>.
    /// </summary>
    public const int DefaultEntries = 4096;

    /// <summary>Daemon buffers hedged reads may hold at once; a read beyond it is not hedged.</summary>
    public const long MaxHeldBytes = 32L << 20;

    /// <summary>
    /// The bound is this times the link's recent median READ latency: about its p95-p99 on a healthy link (so few
    /// reads are hedged), and the median, unlike a p90, does not move when a stall of the link lands a burst of late
    /// answers in its histogram (at QD1 with hedging a 200 ms retransmission wait puts a fifth of a link's recent
    /// reads there; a p90 then climbed to the cap and stayed for thousands of reads).
    /// </summary>
    public const double Multiplier = 3;

    /// <summary>The most a bound can be: well under TCP's 200 ms minimum retransmission timeout.</summary>
    public static readonly TimeSpan DefaultCap = TimeSpan.FromMilliseconds(50);

    private readonly HedgedRead[] _entries;
    private readonly int[] _free;
    private readonly Lock _freeLock = new();
    private readonly TimeProvider _time;
    private readonly double _ticksPerNanosecond;
    private readonly long _floorNanoseconds;
    private readonly long _capNanoseconds;
    private readonly HedgeSweeper? _sweeper;
    private int _freeCount;
    private long _heldBytes;
    private int _armed;
    private long _started;
    private long _wonByDisk;
    private long _wonByDaemon;
    private long _daemonDropped;

    /// <param name="sweep">False for tests that call <see cref="Sweep"/> themselves.</param>
    public ReadHedger(IBackupStore disk, TimeSpan floor, TimeSpan cap, TimeProvider time, int entries = DefaultEntries, bool sweep = true)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(entries);
        Disk = disk;
        _time = time;
        _ticksPerNanosecond = time.TimestampFrequency / 1e9;
        _floorNanoseconds = (long)floor.TotalNanoseconds;
        _capNanoseconds = Math.Max(_floorNanoseconds, (long)cap.TotalNanoseconds);
        _entries = new HedgedRead[entries];
        _free = new int[entries];
        for (var i = 0; i < entries; i++)
        {
            _entries[i] = new HedgedRead(this, i);
            _free[i] = entries - 1 - i;
        }

        _freeCount = entries;
        if (sweep)
        {
            _sweeper = new HedgeSweeper(this, time);
            _sweeper.Start();
        }
    }

    /// <summary>What the disk side reads (the device's disk, which logs its errors).</summary>
    public IBackupStore Disk { get; }

    /// <summary>Reads whose daemon missed the bound, so the disk was asked too.</summary>
    public long Started => Interlocked.Read(ref _started);

    /// <summary>Hedged reads the disk answered first (the daemon's late reply was dropped).</summary>
    public long WonByDisk => Interlocked.Read(ref _wonByDisk);

    /// <summary>Hedged reads the daemon still answered before the disk.</summary>
    public long WonByDaemon => Interlocked.Read(ref _wonByDaemon);

    /// <summary>Daemon replies (or failures) that came after the disk had answered, dropped with their buffer.</summary>
    internal long DaemonDropped => Interlocked.Read(ref _daemonDropped);

    /// <summary>Entries free right now; all of them once every daemon side has ended.</summary>
    internal int FreeEntries
    {
        get
        {
            lock (_freeLock)
            {
                return _freeCount;
            }
        }
    }

    /// <summary>Reads waiting for their bound right now.</summary>
    public int ArmedCount => Volatile.Read(ref _armed);

    /// <summary>Sweeps done so far (tests wait for one more to know the sweeper has looked).</summary>
    public long Sweeps => _sweeper?.Sweeps ?? 0;

    /// <summary>A free entry holding a daemon buffer of at least <paramref name="bytes"/>, or null when all are in use.</summary>
    public HedgedRead? TryRent(int bytes)
    {
        HedgedRead entry;
        lock (_freeLock)
        {
            if (_freeCount == 0 || _heldBytes + bytes > MaxHeldBytes)
            {
                return null;
            }

            _heldBytes += bytes;
            entry = _entries[_free[--_freeCount]];
        }

        entry.Rent(bytes);
        return entry;
    }

    /// <summary>How long a READ on a link with these latencies waits before the disk is asked too.</summary>
    public TimeSpan Bound(ReadLatency latency) => TimeSpan.FromTicks(BoundNanoseconds(latency) / 100);

    /// <summary>The deadline, as a timestamp of the device's clock, of a READ on that link sent now.</summary>
    public long DeadlineFor(ReadLatency latency) => _time.GetTimestamp() + (long)(BoundNanoseconds(latency) * _ticksPerNanosecond);

    /// <summary>
    /// Fires every pending read whose deadline has passed; returns the earliest deadline still ahead (long.MaxValue:
    /// none). The first one fired reads the disk right here, once the scan is done: a thread-pool hop costs a loaded
    /// machine milliseconds, more than the bound. The others (many at once only when a link stalls) go to the pool.
    /// </summary>
    public long Sweep(long now)
    {
        var next = long.MaxValue;
        HedgedRead? runHere = null;
        // Entries are taken lowest index first, so the armed ones sit low: the scan stops once it has seen as many as
        // were armed when it began (one armed meanwhile further up is seen by the next sweep, a tick later). Scanning all 4096 every slice cost the sweeper thread 10-20 µs per wake.
        var remaining = ArmedCount;
        for (var i = 0; i < _entries.Length && remaining > 0; i++)
        {
            var entry = _entries[i];
            if (!entry.IsPending)
            {
                continue;
            }

            remaining--;
            next = Math.Min(next, entry.Fire(now, ref runHere));
        }

        runHere?.Execute();
        return next;
    }

    public void Dispose() => _sweeper?.Dispose();

    internal void Return(HedgedRead entry, int bytes)
    {
        lock (_freeLock)
        {
            _heldBytes -= bytes;
            _free[_freeCount++] = entry.Index;
        }
    }

    internal void Armed()
    {
        if (Interlocked.Increment(ref _armed) == 1)
        {
            _sweeper?.Wake();
        }
    }

    internal void Disarmed() => Interlocked.Decrement(ref _armed);

    internal void CountStarted() => Interlocked.Increment(ref _started);

    /// <summary>Tests only: runs on the sweeper's thread right after it takes a read to Hedged, before the disk side starts.</summary>
    internal Action? AfterFireForTests { get; set; }

    internal void CountWonByDisk() => Interlocked.Increment(ref _wonByDisk);

    internal void CountWonByDaemon() => Interlocked.Increment(ref _wonByDaemon);

    internal void CountDaemonDropped() => Interlocked.Increment(ref _daemonDropped);

    private long BoundNanoseconds(ReadLatency latency)
    {
        var estimate = latency.EstimateNanoseconds;
        // A link with too few reads to go by is given the cap: no disk reads for it on a guess.
        return estimate < 0 ? _capNanoseconds : Math.Clamp((long)(estimate * Multiplier), _floorNanoseconds, _capNanoseconds);
    }
}
