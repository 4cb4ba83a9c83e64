using Swap.Slabs.Buffers;
using Swap.Slabs.Devices;
using Swap.Slabs.Remote;
using Swap.Slabs.Wire;

namespace Swap.Slabs.Mapping;

public sealed partial class SwapDevice
{
    private const int Unplaced = 0;
    private const int Placing = 1;
    private const int Placed = 2;
    private const int Waiting = 3;
    private const int FillChunk = 1 << 20;

    private readonly Random _random;
    private readonly Lock _randomLock = new();
    private readonly SemaphoreSlim _fills;
    private readonly CancellationTokenSource _stop = new();
    private int _disposed;

    /// <summary>Places the slab in the background unless it is placed, being placed, or waiting to retry.</summary>
    private void EnsurePlaced(int slab)
    {
        if (Volatile.Read(ref _placement[slab]) == Unplaced && Volatile.Read(ref _disposed) == 0 &&
            Interlocked.CompareExchange(ref _placement[slab], Placing, Unplaced) == Unplaced)
        {
            _ = Task.Run(() => PlaceAsync(slab));
        }
    }

    private async Task PlaceAsync(int slab)
    {
        string reason;
        try
        {
            var candidates = HealthyLinks();
            reason = candidates.Count == 0 ? "no daemon is up" : "every daemon is full";
            foreach (var (daemon, link) in await ChooseAsync(candidates).ConfigureAwait(false))
            {
                DaemonReply reply;
                try
                {
                    reply = await link.AllocSlabAsync(_options.SlabSize, slab).ConfigureAwait(false);
                }
                catch (DaemonLinkException)
                {
                    continue;
                }

                if (!reply.Ok)
                {
                    continue;
                }

                var mapping = new SlabMapping(daemon, link, reply.Grant, PagesIn(slab));
                Volatile.Write(ref _map[slab], mapping);
                Volatile.Write(ref _placement[slab], Placed);
                Volatile.Write(ref _retries[slab], 0);
                SlabLog.Placed(_logger, slab, daemon.Name, reply.Grant.SlabId, reply.Grant.Epoch);
                if (!link.IsAlive)
                {
                    // Lost between the grant and publishing the mapping: OnLost may have looked before it was there.
                    Unmap(slab, mapping, "daemon lost while placing");
                    return;
                }

                await FillAsync(slab, mapping).ConfigureAwait(false);
                return;
            }
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
            return;
        }

        RetryLater(slab, reason);
    }

    /// <summary>
    /// Power of two choices: two distinct daemons at random, asked how many slabs they can still take (one round
    /// trip, both at once); the freer comes first (ties at random), then the other, then everyone else at random.
    /// </summary>
    private async Task<List<(DaemonEndpoint Daemon, DaemonLink Link)>> ChooseAsync(List<(DaemonEndpoint Daemon, DaemonLink Link)> candidates)
    {
        lock (_randomLock)
        {
            _random.Shuffle(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(candidates));
        }

        if (candidates.Count < 2)
        {
            return candidates;
        }

        var first = QueryFreeAsync(candidates[0].Link);
        var second = QueryFreeAsync(candidates[1].Link);
        var free0 = await first.ConfigureAwait(false);
        var free1 = await second.ConfigureAwait(false);
        bool swap;
        lock (_randomLock)
        {
            swap = free1 > free0 || (free1 == free0 && _random.Next(2) == 0);
        }

        if (swap)
        {
            (candidates[0], candidates[1]) = (candidates[1], candidates[0]);
            (free0, free1) = (free1, free0);
        }

        // A sampled daemon that said it is full is not asked again; the rest were not asked at all.
        if (free1 == 0)
        {
            candidates.RemoveAt(1);
        }

        if (free0 == 0)
        {
            candidates.RemoveAt(0);
        }

        return candidates;
    }

    private async Task<long> QueryFreeAsync(DaemonLink link)
    {
        try
        {
            var reply = await link.QueryFreeAsync(_options.SlabSize).ConfigureAwait(false);
            return reply.Ok ? reply.FreeSlabs : 0;
        }
        catch (DaemonLinkException)
        {
            return 0;
        }
    }

    private List<(DaemonEndpoint Daemon, DaemonLink Link)> HealthyLinks()
    {
        var links = new List<(DaemonEndpoint, DaemonLink)>(_daemons.Length);
        foreach (var daemon in _daemons)
        {
            if (daemon.Link is { IsAlive: true } link)
            {
                links.Add((daemon, link));
            }
        }

        return links;
    }

    private void RetryLater(int slab, string reason)
    {
        var attempt = Interlocked.Increment(ref _retries[slab]);
        var delay = TimeSpan.FromTicks(Math.Min(_options.PlacementRetryMaxDelay.Ticks,
            _options.PlacementRetryDelay.Ticks << Math.Min(attempt - 1, 20)));
        lock (_randomLock)
        {
            delay *= 0.75 + (_random.NextDouble() / 2);
        }

        if (attempt == 1 || (attempt & (attempt - 1)) == 0)
        {
            SlabLog.NotPlaced(_logger, slab, reason, delay);
        }

        Volatile.Write(ref _placement[slab], Waiting);
        _ = RetryAfterAsync(slab, delay);
    }

    private async Task RetryAfterAsync(int slab, TimeSpan delay)
    {
        try
        {
            await Task.Delay(delay, _time, _stop.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return;
        }

        Wake(slab);
    }

    /// <summary>A slab waiting to retry is placed now if it holds data.</summary>
    private void Wake(int slab)
    {
        if (Interlocked.CompareExchange(ref _placement[slab], Unplaced, Waiting) == Waiting && HasData(slab))
        {
            EnsurePlaced(slab);
        }
    }

    private bool HasData(int slab)
    {
        var first = (long)slab * _pagesPerSlab;
        return _onDisk.Any(first, PagesIn(slab));
    }

    private long PagesIn(int slab) => Math.Min(_pagesPerSlab, _onDisk.Pages - ((long)slab * _pagesPerSlab));

    /// <summary>
    /// Copies the slab's pages from the disk to its new daemon, in passes: writes during a pass go to the disk only
    /// and mark their pages, which the next pass copies again. Then the mapping turns active.
    /// </summary>
    private async Task FillAsync(int slab, SlabMapping mapping)
    {
        await _fills.WaitAsync(_stop.Token).ConfigureAwait(false);
        var buffer = PinnedBufferPool.Shared.Rent(FillChunk);
        long copied = 0;
        try
        {
            // Writes that began under the previous mapping may still be writing the disk: let them finish first.
            await _writers.DrainAsync(slab, _time, _stop.Token).ConfigureAwait(false);
            var slabBase = (long)slab << _slabShift;
            var firstPage = (long)slab * _pagesPerSlab;
            var pages = PagesIn(slab);
            for (var pass = 0; pass < 4; pass++)
            {
                long copiedThisPass = 0;
                var page = 0L;
                while (page < pages)
                {
                    // Next run of pages that are on disk but not (or no longer) valid on the daemon.
                    page = _onDisk.NextDifferent(firstPage + page, firstPage + pages, value: false) - firstPage;
                    if (page >= pages)
                    {
                        break;
                    }

                    if (mapping.Valid.Get(page))
                    {
                        page++;
                        continue;
                    }

                    var end = Math.Min(Math.Min(pages, page + (FillChunk >> PageShift)), _onDisk.NextDifferent(firstPage + page, firstPage + pages, value: true) - firstPage);
                    end = mapping.Valid.NextDifferent(page, end, value: false);
                    var count = end - page;
                    var bytes = (int)(count << PageShift);
                    mapping.BeginFill(page, count);
                    var diskOffset = slabBase + (page << PageShift);
                    var length = (int)Math.Min(bytes, Size - diskOffset);
                    DiskRead(diskOffset, buffer.AsSpan(0, length));
                    if (!mapping.Usable)
                    {
                        return;
                    }

                    var reply = await mapping.Link.WriteAsync(mapping.Grant, page << PageShift, buffer.AsMemory(0, length)).ConfigureAwait(false);
                    if (!reply.Ok)
                    {
                        Unmap(slab, mapping, $"daemon answered {reply.Status} while filling");
                        return;
                    }

                    mapping.Filled(page, count);
                    copiedThisPass += count;
                    page = end;
                }

                copied += copiedThisPass;
                if (copiedThisPass == 0)
                {
                    break;
                }
            }

            mapping.Activate();
            SlabLog.Filled(_logger, slab, mapping.Daemon.Name, copied);
        }
        catch (DaemonLinkException)
        {
            // OnLost unmaps the slab and places it again.
        }
        catch (BlockDeviceException ex)
        {
            SlabLog.FillFailed(_logger, slab, ex.Message);
            Unmap(slab, mapping, "the backup disk failed while filling");
        }
        finally
        {
            PinnedBufferPool.Shared.Return(buffer);
            _fills.Release();
        }
    }

    /// <summary>Drops the slab to disk-only at once and places it again in the background.</summary>
    private void Unmap(int slab, SlabMapping mapping, string reason)
    {
        if (!mapping.Kill() || Interlocked.CompareExchange(ref _map[slab], null, mapping) != mapping)
        {
            return;
        }

        SlabLog.Unmapped(_logger, slab, mapping.Daemon.Name, reason);
        Volatile.Write(ref _placement[slab], Unplaced);
        if (HasData(slab))
        {
            EnsurePlaced(slab);
        }
    }

    private void OnJoined(DaemonEndpoint daemon, DaemonLink link)
    {
        link.Evicted += OnEvicted;
        for (var slab = 0; slab < _placement.Length; slab++)
        {
            Volatile.Write(ref _retries[slab], 0);
            Wake(slab);
        }
    }

    private void OnLost(DaemonEndpoint daemon, DaemonLink link)
    {
        link.Evicted -= OnEvicted;
        for (var slab = 0; slab < _map.Length; slab++)
        {
            if (Volatile.Read(ref _map[slab]) is { } mapping && mapping.Link == link)
            {
                Unmap(slab, mapping, $"daemon lost ({link.DeathReason})");
            }
        }
    }

    private void OnEvicted(DaemonLink link, SlabGrant grant)
    {
        for (var slab = 0; slab < _map.Length; slab++)
        {
            if (Volatile.Read(ref _map[slab]) is { } mapping && mapping.Link == link && mapping.Grant == grant)
            {
                Unmap(slab, mapping, "evicted by the daemon");
                return;
            }
        }
    }
}
