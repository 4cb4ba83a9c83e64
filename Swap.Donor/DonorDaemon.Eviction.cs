namespace Swap.Donor;

// The memory monitor (eviction under pressure) and the grace period of disconnected clients.
public sealed partial class DonorDaemon
{
    private ITimer? _monitor;
    private double _smoothed = double.NaN;

    /// <summary>The smoothed MemAvailable the monitor last computed, in bytes.</summary>
    public long SmoothedMemAvailable
    {
        get
        {
            lock (_lock)
            {
                return double.IsNaN(_smoothed) ? 0 : (long)_smoothed;
            }
        }
    }

    private void StartMonitor()
    {
        var reading = _memory.GetAvailableBytes();
        lock (_lock)
        {
            _smoothed = reading;
        }

        _monitor = _time.CreateTimer(_ => MonitorTick(), null, _options.MonitorInterval, _options.MonitorInterval);
    }

    private void StopMonitor()
    {
        _monitor?.Dispose();
        _monitor = null;
    }

    private long SmoothedLocked(long reading) => double.IsNaN(_smoothed) ? reading : (long)_smoothed;

    /// <summary>
    /// Reads MemAvailable and, while the smoothed value is under the headroom, evicts: sample E+E′ mapped slabs at
    /// random, evict the E least recently active, until the committed memory freed covers the shortfall or no slab is left.
    /// </summary>
    private void MonitorTick()
    {
        try
        {
            var reading = _memory.GetAvailableBytes();
            List<(DonorConnection? Connection, uint SlabId, uint Epoch)>? notices = null;
            lock (_lock)
            {
                if (Volatile.Read(ref _stopped) != 0)
                {
                    return;
                }

                var alpha = _options.MemAvailableSmoothing;
                _smoothed = double.IsNaN(_smoothed) ? reading : (alpha * reading) + ((1 - alpha) * _smoothed);
                var shortfall = _options.Headroom - (long)_smoothed;
                if (shortfall <= 0 || _mapped.Count == 0)
                {
                    return;
                }

                DonorLog.MemoryPressure(_logger, (long)_smoothed, _options.Headroom);
                notices = [];
                long freed = 0;
                var sample = new List<DonorSlab>(_options.EvictBatch + _options.EvictExtraSamples);
                while (freed < shortfall && _mapped.Count > 0)
                {
                    SampleLocked(sample);
                    sample.Sort(static (a, b) => a.LastAccess.CompareTo(b.LastAccess));
                    for (var i = 0; i < Math.Min(_options.EvictBatch, sample.Count); i++)
                    {
                        var slab = sample[i];
                        var committed = RemoveLocked(slab);
                        freed += committed;
                        DonorLog.SlabEvicted(_logger, slab.Id, slab.Epoch, slab.Owner.Id, committed);
                        notices.Add((slab.Owner.Connections.Find(static c => !c.IsClosed), slab.Id, slab.Epoch));
                    }
                }

                // The memory is back with the kernel now; without this the lagging average would evict again next round.
                _smoothed += freed;
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
            DonorLog.MonitorFailed(_logger, ex);
        }
    }

    /// <summary>E+E′ distinct mapped slabs chosen at random (all of them if there are no more).</summary>
    private void SampleLocked(List<DonorSlab> sample)
    {
        sample.Clear();
        var want = _options.EvictBatch + _options.EvictExtraSamples;
        if (_mapped.Count <= want)
        {
            sample.AddRange(_mapped);
            return;
        }

        // Partial Fisher-Yates over the mapped list itself: order there carries no meaning, only MappedIndex must follow.
        for (var i = 0; i < want; i++)
        {
            var j = Random.Shared.Next(i, _mapped.Count);
            (_mapped[i], _mapped[j]) = (_mapped[j], _mapped[i]);
            _mapped[i].MappedIndex = i;
            _mapped[j].MappedIndex = j;
            sample.Add(_mapped[i]);
        }
    }

    /// <summary>A connection ended: if it was its client's last, the client's slabs are kept for the grace period.</summary>
    private void DetachClient(DonorConnection connection)
    {
        lock (_lock)
        {
            if (connection.Client is not { } client || !client.Connections.Remove(connection) || client.Connections.Count > 0)
            {
                return;
            }

            if (Volatile.Read(ref _stopped) != 0 || !_clients.ContainsKey(client.Id))
            {
                return;
            }

            if (_options.GracePeriod == TimeSpan.Zero)
            {
                ExpireLocked(client);
                return;
            }

            DonorLog.GraceStarted(_logger, client.Id, _options.GracePeriod);
            client.GraceTimer?.Dispose();
            ITimer? timer = null;
            timer = _time.CreateTimer(_ => Expire(client, timer), null, _options.GracePeriod, Timeout.InfiniteTimeSpan);
            client.GraceTimer = timer;
        }
    }

    private void Expire(DonorClient client, ITimer? timer)
    {
        lock (_lock)
        {
            // A HELLO in time replaced or cleared the timer; this one is stale.
            if (timer is null || client.GraceTimer != timer || client.Connections.Count > 0)
            {
                return;
            }

            timer.Dispose();
            client.GraceTimer = null;
            ExpireLocked(client);
        }
    }

    private void ExpireLocked(DonorClient client)
    {
        var slabs = client.Slabs.Count;
        foreach (var slab in client.Slabs.ToArray())
        {
            RemoveLocked(slab);
        }

        _clients.Remove(client.Id);
        DonorLog.GraceExpired(_logger, client.Id, slabs);
    }
}
