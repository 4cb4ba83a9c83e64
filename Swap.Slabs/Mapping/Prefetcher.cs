using Swap.Slabs.Prefetch;

namespace Swap.Slabs.Mapping;

/// <summary>
/// Reads ahead of the swap-in stream (Leap's idea): every READ's first page goes to a <see cref="TrendDetector"/>; when
/// the newest reads have a majority delta (sequential, reverse, strided), the pages of the next reads along that
/// trend are read from their donors into the <see cref="PrefetchCache"/>, and a later READ that finds all its pages
/// there is answered from it without a donor round trip. The window (how many reads ahead) doubles while prefetched
/// pages are being read, up to <see cref="MaxDepth"/>, and falls back to one read ahead when the trend is lost.
/// Only pages valid on a usable daemon are prefetched (a disk-only page would cost a disk read on this thread);
/// sealed pages are opened and checked as any read. A write, TRIM or WRITE_ZEROES invalidates its pages once it is
/// done (a prefetch still in flight then has its answer thrown away), and a slab taken off its daemon drops its
/// pages. Donor bytes added are bounded by <see cref="PrefetchBudget"/> and by <see cref="MaxInFlight"/>.
/// </summary>
internal sealed class Prefetcher
{
    /// <summary>Reads ahead at most (the window), each the size of the READ that predicted it.</summary>
    public const int MaxDepth = 8;

    /// <summary>Pages one READ may start prefetching at most.</summary>
    public const int MaxPagesPerRead = 64;

    private const int PageShift = PrefetchCache.PageShift;
    private const int PageSize = PrefetchCache.PageSize;

    private readonly SlabTable _table;
    private readonly ReadPath _reads;
    private readonly PrefetchCache _cache;
    private readonly PrefetchBudget _budget;
    private readonly PrefetchJob[] _jobs;
    private readonly long _devicePages;
    private readonly Lock _lock = new();
    private readonly TrendDetector _detector = new();
    private int _depth = 1;
    private long _hitsSeen;
    private long _missedPages;
    private long _issued;
    private long _budgetStops;

    public Prefetcher(SlabTable table, ReadPath reads, long deviceSize, int cachePages, long bytesPerSecond, TimeProvider time)
    {
        _table = table;
        _reads = reads;
        _devicePages = deviceSize >> PageShift;
        _cache = new PrefetchCache(cachePages);
        _budget = new PrefetchBudget(bytesPerSecond, time);
        MaxInFlight = Math.Max(1, Math.Min(256, cachePages / 2));
        _jobs = new PrefetchJob[cachePages];
        for (var slot = 0; slot < cachePages; slot++)
        {
            _jobs[slot] = new PrefetchJob(this, slot);
        }
    }

    /// <summary>Prefetch reads in flight at most (half the cache, at most 256).</summary>
    public int MaxInFlight { get; }

    internal PrefetchCache Cache => _cache;

    /// <summary>Pages READs took from the cache.</summary>
    public long Hits => _cache.Hits;

    /// <summary>Pages READs had to fetch (from a daemon or the disk) while prefetching was on.</summary>
    public long Misses => Interlocked.Read(ref _missedPages);

    /// <summary>Pages asked of donors ahead of time (each 4 KiB of donor traffic, plus its tag when sealed).</summary>
    public long Issued => Interlocked.Read(ref _issued);

    /// <summary>Prefetched pages never read: evicted, invalidated, dropped with their slab, or thrown away on landing.</summary>
    public long Wasted => _cache.Wasted + _cache.Discarded;

    /// <summary>Times a read's prefetches stopped at the donor byte budget.</summary>
    public long BudgetStops => Interlocked.Read(ref _budgetStops);

    /// <summary>Answers a whole-page READ from the cache when all its pages are there (they leave the cache).</summary>
    public bool TryServe(long offset, Span<byte> destination)
    {
        if (((offset | (long)destination.Length) & (PageSize - 1)) != 0 || destination.IsEmpty || _cache.Count == 0)
        {
            return false;
        }

        return _cache.TryTake(offset >> PageShift, destination);
    }

    /// <summary>
    /// A READ of <paramref name="length"/> bytes at <paramref name="offset"/> was served from the cache
    /// (<paramref name="hit"/>) or sent on: feeds the trend and starts the prefetches it predicts.
    /// </summary>
    public void Observe(long offset, int length, bool hit)
    {
        if (((offset | (long)length) & (PageSize - 1)) != 0 || length == 0)
        {
            return;
        }

        var first = offset >> PageShift;
        var pages = length >> PageShift;
        if (!hit)
        {
            Interlocked.Add(ref _missedPages, pages);
        }

        Span<long> wanted = stackalloc long[MaxPagesPerRead];
        var count = 0;
        lock (_lock)
        {
            var trend = _detector.Record(first);
            if (trend == 0)
            {
                _depth = 1;
                return;
            }

            // Leap's window: wider while the last prefetches were being read.
            var hits = _cache.Hits;
            if (hits > _hitsSeen)
            {
                _depth = Math.Min(MaxDepth, _depth * 2);
            }

            _hitsSeen = hits;
            for (var step = 1; step <= _depth && count < MaxPagesPerRead; step++)
            {
                var start = first + (step * trend);
                for (var page = start; page < start + pages && count < MaxPagesPerRead; page++)
                {
                    if (page >= 0 && page < _devicePages)
                    {
                        wanted[count++] = page;
                    }
                }
            }
        }

        for (var i = 0; i < count; i++)
        {
            if (!TryStart(wanted[i]))
            {
                return;
            }
        }
    }

    /// <summary>A write, TRIM or WRITE_ZEROES of the range is done: its pages leave the cache; in-flight ones are discarded on landing.</summary>
    public void Invalidate(long offset, long length)
    {
        // Pairs with the fence after a slot is reserved: either this sees the reservation, or that prefetch sees
        // what the write did (its page no longer valid on the daemon, or sealed anew) and reads no old copy.
        Interlocked.MemoryBarrier();
        if (_cache.Count == 0 || length <= 0)
        {
            return;
        }

        _cache.Invalidate(offset >> PageShift, (offset + length + PageSize - 1) >> PageShift);
    }

    /// <summary>The slab was taken off its daemon (lost, evicted, moved, failed): its pages leave the cache.</summary>
    public void DropSlab(int slab)
    {
        var first = _table.BaseOf(slab) >> PageShift;
        _cache.Invalidate(first, first + _table.PagesPerSlab);
    }

    internal void Landed(int slot, bool succeeded) => _cache.Complete(slot, succeeded);

    /// <summary>Starts one page's prefetch; false when prefetching should stop for this READ (budget or in-flight bound).</summary>
    private bool TryStart(long page)
    {
        var offset = page << PageShift;
        var slab = _table.SlabOf(offset);
        if (_table.Mapping(slab) is not { Usable: true } mapping || !mapping.Valid.Get((offset - _table.BaseOf(slab)) >> PageShift) || _cache.Contains(page))
        {
            return true;
        }

        if (_cache.InFlight >= MaxInFlight)
        {
            return false;
        }

        bool paid;
        lock (_lock)
        {
            paid = _budget.TryTake(PageSize);
        }

        if (!paid)
        {
            Interlocked.Increment(ref _budgetStops);
            return false;
        }

        var slot = _cache.TryReserve(page);
        if (slot < 0)
        {
            // Cached or in flight since the check above, or every slot loading: nothing read, nothing spent.
            lock (_lock)
            {
                _budget.Refund(PageSize);
            }

            return true;
        }

        // Pairs with the fence in Invalidate (see there).
        Interlocked.MemoryBarrier();
        Interlocked.Increment(ref _issued);
        _jobs[slot].Start(mapping, _reads.TryPrefetchAsync(slab, mapping, offset - _table.BaseOf(slab), _cache.SlotMemory(slot)));
        return true;
    }
}
