using Microsoft.Extensions.Logging;
using Swap.Donor.Slabs;

namespace Swap.Donor.Eviction;

/// <summary>
/// The memory monitor: samples MemAvailable every MonitorInterval on the injected clock, smooths it, and while the
/// average is under the headroom evicts the least recently active of E+E′ sampled slabs and tells their clients
/// (EVICTED). Shares the daemon's lock with the slab table it evicts from.
/// </summary>
internal sealed class MemoryPressureEvictor(
    Lock gate, DonorSlabTable slabs, SmoothedMemAvailable smoothed, IMemoryAvailability memory, DonorOptions options, TimeProvider time, ILogger logger)
{
    private ITimer? _timer;
    private bool _stopped;
    private long _evicted;
    private long _lastReading;

    /// <summary>Slabs evicted so far.</summary>
    public long Evicted => Interlocked.Read(ref _evicted);

    /// <summary>MemAvailable as last read, in bytes (before smoothing).</summary>
    public long LastMemAvailable => Interlocked.Read(ref _lastReading);

    /// <summary>The smoothed MemAvailable last computed, in bytes.</summary>
    public long SmoothedMemAvailable
    {
        get
        {
            lock (gate)
            {
                return smoothed.Value;
            }
        }
    }

    public void Start()
    {
        var reading = memory.GetAvailableBytes();
        Interlocked.Exchange(ref _lastReading, reading);
        lock (gate)
        {
            smoothed.Reset(reading);
        }

        _timer = time.CreateTimer(_ => Tick(), null, options.MonitorInterval, options.MonitorInterval);
    }

    /// <summary>No eviction from now on (a tick already running finds the flag under the lock).</summary>
    public void Stop()
    {
        lock (gate)
        {
            _stopped = true;
        }

        _timer?.Dispose();
        _timer = null;
    }

    /// <summary>
    /// Reads MemAvailable and, while the smoothed value is under the headroom, evicts: sample E+E′ mapped slabs at
    /// random, evict the E least recently active, until the committed memory freed covers the shortfall or no slab is left.
    /// </summary>
    private void Tick()
    {
        try
        {
            var reading = memory.GetAvailableBytes();
            Interlocked.Exchange(ref _lastReading, reading);
            List<(IClientConnection? Connection, uint SlabId, uint Epoch)>? notices = null;
            lock (gate)
            {
                if (_stopped)
                {
                    return;
                }

                var average = smoothed.Add(reading, options.MemAvailableSmoothing);
                var shortfall = options.Headroom - average;
                if (shortfall <= 0 || slabs.CountLocked == 0)
                {
                    return;
                }

                DonorLog.MemoryPressure(logger, average, options.Headroom);
                notices = [];
                long freed = 0;
                var want = options.EvictBatch + options.EvictExtraSamples;
                var sample = new List<DonorSlab>(want);
                while (freed < shortfall && slabs.CountLocked > 0)
                {
                    slabs.SampleLocked(sample, want);
                    sample.Sort(static (a, b) => a.LastAccess.CompareTo(b.LastAccess));
                    for (var i = 0; i < Math.Min(options.EvictBatch, sample.Count); i++)
                    {
                        var slab = sample[i];
                        var committed = slabs.RemoveLocked(slab);
                        freed += committed;
                        DonorLog.SlabEvicted(logger, slab.Id, slab.Epoch, slab.Owner.Id, committed);
                        Interlocked.Increment(ref _evicted);
                        notices.Add((slab.Owner.LiveConnection(), slab.Id, slab.Epoch));
                    }
                }

                // The memory is back with the kernel now; without this the lagging average would evict again next round.
                smoothed.Credit(freed);
            }

            foreach (var (connection, slabId, epoch) in notices)
            {
                if (connection is not null)
                {
                    // Off the monitor: a slow peer must not hold up eviction for everyone else.
                    _ = Task.Run(() => connection.SendEvicted(slabId, epoch));
                }
            }
        }
        catch (Exception ex)
        {
            DonorLog.MonitorFailed(logger, ex);
        }
    }
}
