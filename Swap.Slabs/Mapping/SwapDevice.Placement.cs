using Swap.Common.Buffers;
using Swap.BlockDevices;
using Swap.Slabs.Placement;
using Swap.Slabs.Remote;
using Swap.Daemon.Protocol;

namespace Swap.Slabs.Mapping;

public sealed partial class SwapDevice
{
    private const int Unplaced = 0;
    private const int Placing = 1;
    private const int Placed = 2;
    private const int Waiting = 3;

    /// <summary>Size of the buffer that copies a slab's pages from the backup disk to its new daemon.</summary>
    public const int CopyChunkSize = 1 << 20;

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
                    await Task.Yield(); // off the link's receive thread: filling reads the disk
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
    /// Power of two choices: two distinct daemons at random (<see cref="PowerOfChoices"/>), asked how many slabs they
    /// can still take (one round trip, both at once); the freer comes first (ties at random), then the other unless it
    /// said it is full, then everyone else in random order.
    /// </summary>
    private async Task<List<(DaemonEndpoint Daemon, DaemonLink Link)>> ChooseAsync(List<(DaemonEndpoint Daemon, DaemonLink Link)> candidates)
    {
        var order = new List<(DaemonEndpoint, DaemonLink)>(candidates.Count);
        if (candidates.Count == 0)
        {
            return order;
        }

        var picked = new int[Math.Min(2, candidates.Count)];
        lock (_randomLock)
        {
            PowerOfChoices.Sample(_random, candidates.Count, picked);
        }

        var queries = new Task<long>[picked.Length];
        for (var i = 0; i < picked.Length; i++)
        {
            queries[i] = QueryFreeAsync(candidates[picked[i]].Link);
        }

        var free = new long[candidates.Count];
        for (var i = 0; i < picked.Length; i++)
        {
            free[picked[i]] = await queries[i].ConfigureAwait(false);
        }

        int best;
        lock (_randomLock)
        {
            best = PowerOfChoices.Freest(_random, picked, free);
        }

        if (best >= 0)
        {
            order.Add(candidates[best]);
            foreach (var other in picked)
            {
                if (other != best && free[other] > 0)
                {
                    order.Add(candidates[other]);
                }
            }
        }

        // Both samples full (or unreachable): try the daemons not sampled, in random order.
        var rest = candidates.Where((_, index) => Array.IndexOf(picked, index) < 0).ToArray();
        lock (_randomLock)
        {
            _random.Shuffle(rest);
        }

        order.AddRange(rest);
        return order;
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
    /// Copies the slab's pages from the disk to its new daemon. While filling, writes go to the disk only and mark
    /// their pages, which the next pass copies again. Then the mapping turns active, the writes that may still have
    /// seen it filling are waited for, and a last round of passes copies what they left, so the daemon's copy is
    /// complete again.
    /// </summary>
    private async Task FillAsync(int slab, SlabMapping mapping)
    {
        await _fills.WaitAsync(_stop.Token).ConfigureAwait(false);
        var buffer = PinnedBufferPool.Shared.Rent(CopyChunkSize);
        try
        {
            // Writes that began under the previous mapping may still be writing the disk: let them finish first.
            await _writers.DrainAsync(slab, _time, _stop.Token).ConfigureAwait(false);
            var copied = await CopyPassesAsync(slab, mapping, buffer).ConfigureAwait(false);
            mapping.Activate();
            await _writers.DrainAsync(slab, _time, _stop.Token).ConfigureAwait(false);
            copied += await CopyPassesAsync(slab, mapping, buffer).ConfigureAwait(false);
            SlabLog.Filled(_logger, slab, mapping.Daemon.Name, copied);
        }
        catch (DaemonLinkException)
        {
            // OnLost unmaps the slab and places it again.
        }
        catch (FillAbortedException ex)
        {
            Unmap(slab, mapping, ex.Message);
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

    /// <summary>Copies pages that are on disk but not valid on the daemon, pass after pass until one finds none (at most 16).</summary>
    private async Task<long> CopyPassesAsync(int slab, SlabMapping mapping, byte[] buffer)
    {
        var slabBase = (long)slab << _slabShift;
        var firstPage = (long)slab * _pagesPerSlab;
        var pages = PagesIn(slab);
        long copied = 0;
        for (var pass = 0; pass < 16; pass++)
        {
            long copiedThisPass = 0;
            var page = 0L;
            while (page < pages)
            {
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

                var end = Math.Min(Math.Min(pages, page + (CopyChunkSize >> PageShift)), _onDisk.NextDifferent(firstPage + page, firstPage + pages, value: true) - firstPage);
                end = mapping.Valid.NextDifferent(page, end, value: false);
                var count = end - page;
                var length = (int)(count << PageShift);
                mapping.BeginFill(page, count);
                DiskRead(slabBase + (page << PageShift), buffer.AsSpan(0, length));
                if (!mapping.Usable)
                {
                    throw new DaemonLinkException("mapping gone while filling");
                }

                Interlocked.Increment(ref mapping.FillSequence);
                var reply = await mapping.Link.WriteAsync(mapping.Grant, page << PageShift, buffer.AsSpan(0, length)).ConfigureAwait(false);
                await Task.Yield(); // off the link's receive thread: the next chunk reads the disk
                if (!reply.Ok)
                {
                    throw new FillAbortedException($"daemon answered {reply.Status} while filling");
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

        return copied;
    }

    private sealed class FillAbortedException(string message) : Exception(message);

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
