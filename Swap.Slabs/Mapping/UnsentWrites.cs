using Swap.Common.Buffers;

namespace Swap.Slabs.Mapping;

/// <summary>
/// How many acknowledged writes of each page of the device wait in a link's write-behind queue, not yet in the
/// link's frame order (one byte a page, allocated once). An older write's reply must not make a page valid on its
/// daemon while a newer write of the page still waits: a read sent then would overtake the newer write and get the
/// older copy. So replies (<see cref="RemoteWrites.Settle"/>) and fills mark pages valid only where this is zero.
/// A write counts its pages before its last invalidation and uncounts them once its frame has its place in the
/// link's order (<see cref="Remote.IQueuedWrite.InFifo"/>), behind which every later read is sent.
/// </summary>
internal sealed class UnsentWrites(long pages)
{
    // Touched now: the request path's first write of a page's count must not be a page fault (PageTouch).
    private readonly byte[] _counts = PageTouch.Touched(new byte[pages]);
    private readonly Lock _lock = new();

    /// <summary>Counts the pages; false, counting nothing, if one of them already has 255 writes waiting.</summary>
    public bool TryAdd(long first, long count)
    {
        var range = _counts.AsSpan((int)first, (int)count);
        lock (_lock)
        {
            if (range.Contains(byte.MaxValue))
            {
                return false;
            }

            for (var i = 0; i < range.Length; i++)
            {
                range[i]++;
            }
        }

        return true;
    }

    public void Remove(long first, long count)
    {
        var range = _counts.AsSpan((int)first, (int)count);
        lock (_lock)
        {
            for (var i = 0; i < range.Length; i++)
            {
                range[i]--;
            }
        }
    }

    /// <summary>The first page in [<paramref name="from"/>, <paramref name="end"/>) whose waiting state is <paramref name="waiting"/>, or <paramref name="end"/>.</summary>
    public long Next(long from, long end, bool waiting)
    {
        var range = _counts.AsSpan((int)from, (int)(end - from));
        var index = waiting ? range.IndexOfAnyExcept((byte)0) : range.IndexOf((byte)0);
        return index < 0 ? end : from + index;
    }

    /// <summary>
    /// Sets the pages of [<paramref name="first"/>, <paramref name="end"/>) in <paramref name="bitmap"/> (a slab's,
    /// whose first page is <paramref name="slabFirstPage"/> here) that have no write waiting. Called holding the
    /// mapping's bits lock, which orders it after a newer write's invalidation of the pages.
    /// </summary>
    public void MarkIdle(PageBitmap bitmap, long first, long end, long slabFirstPage)
    {
        var page = first;
        while (page < end)
        {
            var waiting = Next(slabFirstPage + page, slabFirstPage + end, waiting: true) - slabFirstPage;
            bitmap.Set(page, waiting - page);
            page = Next(slabFirstPage + waiting, slabFirstPage + end, waiting: false) - slabFirstPage;
        }
    }

    /// <summary>Pages with a write waiting, in all (a test's and the status view's figure).</summary>
    public long Count()
    {
        lock (_lock)
        {
            return _counts.Length - _counts.AsSpan().Count((byte)0);
        }
    }
}
