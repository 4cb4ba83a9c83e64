using System.Numerics;
using Swap.Common.Buffers;

namespace Swap.Slabs.Mapping;

/// <summary>A fixed-size bitmap of pages whose bits are set and cleared atomically, a 64-page word at a time.</summary>
public sealed class PageBitmap
{
    private readonly ulong[] _words;

    public PageBitmap(long pages)
    {
        Pages = pages;
        _words = PageTouch.Touched(new ulong[(pages + 63) >> 6]);
    }

    public long Pages { get; }

    public bool Get(long page) => (Volatile.Read(ref _words[page >> 6]) & (1UL << (int)(page & 63))) != 0;

    public void Set(long first, long count) => Apply(first, count, set: true);

    public void Clear(long first, long count) => Apply(first, count, set: false);

    /// <summary>True if every page of the range is set.</summary>
    public bool All(long first, long count) => NextDifferent(first, first + count, value: true) == first + count;

    /// <summary>True if any page of the range is set.</summary>
    public bool Any(long first, long count) => NextDifferent(first, first + count, value: false) < first + count;

    /// <summary>The first page in [<paramref name="from"/>, <paramref name="end"/>) whose bit is not <paramref name="value"/>, or <paramref name="end"/>.</summary>
    public long NextDifferent(long from, long end, bool value)
    {
        var page = from;
        while (page < end)
        {
            var word = Volatile.Read(ref _words[page >> 6]);
            if (!value)
            {
                word = ~word;
            }

            // Bits that differ from `value`, at or above this page.
            var differ = ~word & (ulong.MaxValue << (int)(page & 63));
            if (differ != 0)
            {
                return Math.Min(end, (page & ~63L) + BitOperations.TrailingZeroCount(differ));
            }

            page = (page & ~63L) + 64;
        }

        return end;
    }

    /// <summary>How many pages are set.</summary>
    public long Count()
    {
        long count = 0;
        foreach (var word in _words)
        {
            count += BitOperations.PopCount(word);
        }

        return count;
    }

    private void Apply(long first, long count, bool set)
    {
        var page = first;
        var end = first + count;
        while (page < end)
        {
            var bit = (int)(page & 63);
            var n = (int)Math.Min(64 - bit, end - page);
            var mask = (n == 64 ? ulong.MaxValue : ((1UL << n) - 1)) << bit;
            if (set)
            {
                Interlocked.Or(ref _words[page >> 6], mask);
            }
            else
            {
                Interlocked.And(ref _words[page >> 6], ~mask);
            }

            page += n;
        }
    }
}
