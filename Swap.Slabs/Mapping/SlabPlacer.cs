using Microsoft.Extensions.Logging;
using Swap.Slabs.Placement;
using Swap.Slabs.Remote;

namespace Swap.Slabs.Mapping;

/// <summary>
/// Puts slabs with data on daemons in the background and takes them off again: a slab is placed on the daemon the
/// <see cref="DaemonChooser"/> prefers, then filled; when no daemon can take it, it is retried with jittered
/// exponential back-off; an unmapped slab drops to the disk at once and is placed again.
/// </summary>
/// <param name="stopping">Cancelled when the device stops: placements, fills and retries waiting on it end.</param>
#pragma warning disable CA1001 // the semaphore holds no handle (nobody waits on its AvailableWaitHandle); the placer lives as long as its device
internal sealed class SlabPlacer(SlabTable table, DaemonChooser chooser, SlabFiller filler, SwapDeviceOptions options,
    LockedRandom random, TimeProvider time, ILogger logger, CancellationToken stopping)
{
    private readonly int[] _retries = new int[table.Count];

    /// <summary>
    /// One placement chooses and allocates at a time: daemons answer how many slabs they can take, and two placements
    /// asking at once would both hear the same count and could both take the same daemon (ties are broken at random),
    /// piling slabs written together onto one donor. Two round trips each; the fills still run in parallel.
    /// </summary>
    private readonly SemaphoreSlim _choosing = new(1, 1);
    private int _stopped;
    private long _placements;
    private long _unmaps;

    /// <summary>Places the slab in the background unless it is placed, being placed, or waiting to retry.</summary>
    public void EnsurePlaced(int slab)
    {
        if (table.Placement(slab) == SlabPlacement.Unplaced && Volatile.Read(ref _stopped) == 0 &&
            table.TryMove(slab, SlabPlacement.Unplaced, SlabPlacement.Placing))
        {
            _ = Task.Run(() => PlaceAsync(slab));
        }
    }

    /// <summary>Slabs placed on a daemon so far (a slab placed again after an unmap counts again).</summary>
    public long Placements => Interlocked.Read(ref _placements);

    /// <summary>Slabs taken off a daemon so far (lost link, eviction, a bad answer).</summary>
    public long Unmaps => Interlocked.Read(ref _unmaps);

    /// <summary>Told of every slab taken off its daemon (the prefetcher drops its pages); set once at start.</summary>
    public Action<int>? Unmapped { get; set; }

    /// <summary>Drops the slab to disk-only at once and places it again in the background.</summary>
    public void Unmap(int slab, SlabMapping mapping, string reason)
    {
        if (!mapping.Kill() || !table.TryRemove(slab, mapping))
        {
            return;
        }

        SlabLog.Unmapped(logger, slab, mapping.Daemon.Name, reason);
        Interlocked.Increment(ref _unmaps);
        Unmapped?.Invoke(slab);
        table.SetPlacement(slab, SlabPlacement.Unplaced);
        if (table.HasData(slab))
        {
            EnsurePlaced(slab);
        }
    }

    /// <summary>A daemon joined: every slab waiting to retry tries now, its back-off reset.</summary>
    public void RetryAllNow()
    {
        for (var slab = 0; slab < _retries.Length; slab++)
        {
            Volatile.Write(ref _retries[slab], 0);
            Wake(slab);
        }
    }

    /// <summary>Every slab waiting to retry tries after <paramref name="delay"/> (a daemon's probation ends), its back-off reset.</summary>
    public void RetryAllAfter(TimeSpan delay) => _ = RetryAllAfterAsync(delay);

    /// <summary>No placement starts after this; the ones running end when <c>stopping</c> is cancelled.</summary>
    public void Stop() => Volatile.Write(ref _stopped, 1);

    private async Task PlaceAsync(int slab)
    {
        string reason;
        try
        {
            await _choosing.WaitAsync(stopping).ConfigureAwait(false);
            (DaemonEndpoint Daemon, DaemonLink Link, DaemonReply Reply)? granted = null;
            try
            {
                var candidates = chooser.HealthyLinks();
                reason = candidates.Count == 0 ? "no daemon is up (or only daemons on probation after a failure)" : "every daemon is full";
                foreach (var (daemon, link) in await chooser.ChooseAsync(candidates).ConfigureAwait(false))
                {
                    try
                    {
                        var reply = await link.AllocSlabAsync(options.DonorSlabSize, slab).ConfigureAwait(false);
                        if (reply.Ok)
                        {
                            granted = (daemon, link, reply);
                            break;
                        }
                    }
                    catch (DaemonLinkException)
                    {
                        // Try the next one.
                    }
                }
            }
            finally
            {
                _choosing.Release();
            }

            if (granted is { } grant)
            {
                await Task.Yield(); // off the link's receive thread: filling reads the disk
                var (daemon, link, reply) = grant;
                var mapping = new SlabMapping(daemon, link, reply.Grant, table.PagesIn(slab));
                table.Publish(slab, mapping);
                Volatile.Write(ref _retries[slab], 0);
                SlabLog.Placed(logger, slab, daemon.Name, reply.Grant.SlabId, reply.Grant.Epoch);
                Interlocked.Increment(ref _placements);
                if (!link.IsAlive)
                {
                    // Lost between the grant and publishing the mapping: the pool may have looked before it was there.
                    Unmap(slab, mapping, "daemon lost while placing");
                    return;
                }

                if (!chooser.MayKeep(daemon))
                {
                    // It left the portal between the choice and the grant: its drain may have looked before this mapping was there.
                    Unmap(slab, mapping, "daemon left the portal while placing");
                    return;
                }

                if (await filler.FillAsync(slab, mapping, stopping).ConfigureAwait(false) is { } failure)
                {
                    Unmap(slab, mapping, failure);
                }

                return;
            }
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
            return;
        }

        RetryLater(slab, reason);
    }

    private void RetryLater(int slab, string reason)
    {
        var attempt = Interlocked.Increment(ref _retries[slab]);
        var delay = TimeSpan.FromTicks(Math.Min(options.PlacementRetryMaxDelay.Ticks,
            options.PlacementRetryDelay.Ticks << Math.Min(attempt - 1, 20)));
        delay *= 0.75 + (random.NextDouble() / 2);
        if (attempt == 1 || (attempt & (attempt - 1)) == 0)
        {
            SlabLog.NotPlaced(logger, slab, reason, delay);
        }

        table.SetPlacement(slab, SlabPlacement.Waiting);
        _ = RetryAfterAsync(slab, delay);
    }

    private async Task RetryAfterAsync(int slab, TimeSpan delay)
    {
        try
        {
            await Task.Delay(delay, time, stopping).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return;
        }

        Wake(slab);
    }

    private async Task RetryAllAfterAsync(TimeSpan delay)
    {
        try
        {
            await Task.Delay(delay, time, stopping).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return;
        }

        RetryAllNow();
    }

    /// <summary>A slab waiting to retry is placed now if it holds data.</summary>
    private void Wake(int slab)
    {
        if (table.TryMove(slab, SlabPlacement.Waiting, SlabPlacement.Unplaced) && table.HasData(slab))
        {
            EnsurePlaced(slab);
        }
    }
}
#pragma warning restore CA1001
