namespace Swap.Slabs.Prefetch;

/// <summary>
/// The prefetcher's pages: a fixed number of 4 KiB slots in one pinned array made at start (inside the server's
/// locked memory; nothing is allocated afterwards), indexed by device page. A slot is free, loading (a prefetch is
/// reading into it), stale (loading, but a write, TRIM or drop reached its page meanwhile: what lands is thrown away)
/// or ready. A read that finds all its pages ready takes them and frees the slots (a swapped-in page is not read
/// again before it is written). When every slot is busy the oldest ready page is evicted (counted as wasted); a
/// loading slot is never reused before its read has landed, so a late reply can never write into another page.
/// Thread-safe: one short lock around the index (copies of at most a request's pages happen under it).
/// </summary>
internal sealed class PrefetchCache
{
    public const int PageShift = 12;
    public const int PageSize = 1 << PageShift;

    private const byte Free = 0;
    private const byte Loading = 1;
    private const byte Stale = 2;
    private const byte Ready = 3;

    private readonly Lock _lock = new();
    private readonly byte[] _memory;
    private readonly long[] _pages;
    private readonly byte[] _states;
    private readonly int[] _freeSlots;
    private readonly Dictionary<long, int> _index;
    private int _freeCount;
    private int _indexCount;
    private int _hand;
    private int _loading;
    private long _hits;
    private long _filled;
    private long _wasted;
    private long _discarded;

    public PrefetchCache(int slots)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(slots);
        Slots = slots;
        // Zeroed, so every page of it is touched (and locked by mlockall) now, not when swap-in first needs it.
        _memory = GC.AllocateArray<byte>(slots * PageSize, pinned: true);
        _pages = new long[slots];
        _states = new byte[slots];
        _freeSlots = new int[slots];
        for (var i = 0; i < slots; i++)
        {
            _freeSlots[i] = slots - 1 - i;
        }

        _freeCount = slots;
        _index = new Dictionary<long, int>(slots);
    }

    public int Slots { get; }

    /// <summary>Pages cached or being read now: zero means there is nothing a write needs to invalidate.</summary>
    public int Count => Volatile.Read(ref _indexCount);

    /// <summary>Slots whose read has not landed yet.</summary>
    public int InFlight => Volatile.Read(ref _loading);

    /// <summary>Pages a read took from the cache.</summary>
    public long Hits => Interlocked.Read(ref _hits);

    /// <summary>Prefetched pages that landed and were kept.</summary>
    public long Filled => Interlocked.Read(ref _filled);

    /// <summary>Prefetched pages dropped unread: evicted for room, invalidated by a write or TRIM, or their slab dropped.</summary>
    public long Wasted => Interlocked.Read(ref _wasted);

    /// <summary>Prefetches whose answer was thrown away on landing (a write raced them, or the read failed).</summary>
    public long Discarded => Interlocked.Read(ref _discarded);

    /// <summary>The slot's 4 KiB, for the read that fills it.</summary>
    public Memory<byte> SlotMemory(int slot) => _memory.AsMemory(slot * PageSize, PageSize);

    /// <summary>True when <paramref name="page"/> is cached or being read.</summary>
    public bool Contains(long page)
    {
        lock (_lock)
        {
            return _index.ContainsKey(page);
        }
    }

    /// <summary>A slot to read <paramref name="page"/> into, marked loading; -1 when it is cached or in flight already, or every slot is loading.</summary>
    public int TryReserve(long page)
    {
        lock (_lock)
        {
            if (_index.ContainsKey(page))
            {
                return -1;
            }

            var slot = _freeCount > 0 ? _freeSlots[--_freeCount] : EvictOldestReady();
            if (slot < 0)
            {
                return -1;
            }

            _pages[slot] = page;
            _states[slot] = Loading;
            _index.Add(page, slot);
            _indexCount = _index.Count;
            _loading++;
            return slot;
        }
    }

    /// <summary>The read into <paramref name="slot"/> landed: kept when it succeeded and nothing invalidated its page meanwhile.</summary>
    /// <returns>True when the page was kept.</returns>
    public bool Complete(int slot, bool succeeded)
    {
        lock (_lock)
        {
            _loading--;
            if (_states[slot] == Loading && succeeded)
            {
                _states[slot] = Ready;
                _filled++;
                return true;
            }

            if (_states[slot] == Loading)
            {
                // Failed: its index entry is still there.
                _index.Remove(_pages[slot]);
                _indexCount = _index.Count;
            }

            _discarded++;
            FreeSlot(slot);
            return false;
        }
    }

    /// <summary>
    /// Copies the pages from <paramref name="firstPage"/> into <paramref name="destination"/> (whole pages) and frees
    /// them, if every one is ready; otherwise copies nothing.
    /// </summary>
    public bool TryTake(long firstPage, Span<byte> destination)
    {
        var pages = destination.Length >> PageShift;
        lock (_lock)
        {
            for (var i = 0; i < pages; i++)
            {
                if (!_index.TryGetValue(firstPage + i, out var slot) || _states[slot] != Ready)
                {
                    return false;
                }
            }

            for (var i = 0; i < pages; i++)
            {
                _index.Remove(firstPage + i, out var slot);
                _memory.AsSpan(slot * PageSize, PageSize).CopyTo(destination.Slice(i << PageShift, PageSize));
                FreeSlot(slot);
            }

            _indexCount = _index.Count;
            _hits += pages;
            return true;
        }
    }

    /// <summary>
    /// Pages from <paramref name="firstPage"/> up to <paramref name="endPage"/> leave the cache: ready ones are
    /// freed, loading ones turn stale (their answer is thrown away when it lands).
    /// </summary>
    /// <returns>Pages dropped.</returns>
    public int Invalidate(long firstPage, long endPage)
    {
        lock (_lock)
        {
            if (_index.Count == 0 || endPage <= firstPage)
            {
                return 0;
            }

            var dropped = 0;
            if (endPage - firstPage <= _index.Count)
            {
                for (var page = firstPage; page < endPage; page++)
                {
                    if (_index.Remove(page, out var slot))
                    {
                        Drop(slot);
                        dropped++;
                    }
                }
            }
            else
            {
                // A long range (a TRIM of a slab, a slab dropped): walk the slots instead of the pages.
                for (var slot = 0; slot < Slots; slot++)
                {
                    if (_states[slot] is Loading or Ready && _pages[slot] >= firstPage && _pages[slot] < endPage)
                    {
                        _index.Remove(_pages[slot]);
                        Drop(slot);
                        dropped++;
                    }
                }
            }

            _indexCount = _index.Count;
            return dropped;
        }
    }

    private void Drop(int slot)
    {
        _wasted++;
        if (_states[slot] == Ready)
        {
            FreeSlot(slot);
        }
        else
        {
            _states[slot] = Stale;
        }
    }

    /// <summary>Frees the next ready slot in clock order (round the slots) and returns it; -1 when every slot is loading or stale.</summary>
    private int EvictOldestReady()
    {
        for (var i = 0; i < Slots; i++)
        {
            var slot = _hand;
            _hand = (_hand + 1) % Slots;
            if (_states[slot] == Ready)
            {
                _index.Remove(_pages[slot]);
                _wasted++;
                _states[slot] = Free;
                return slot;
            }
        }

        return -1;
    }

    private void FreeSlot(int slot)
    {
        _states[slot] = Free;
        _freeSlots[_freeCount++] = slot;
    }
}
