namespace Swap.Slabs.Prefetch;

/// <summary>
/// Leap's majority trend (Al Maruf and Chowdhury, ATC'20) over a stream of read positions: it keeps the last
/// <see cref="History"/> deltas between consecutive reads and looks for a delta that is a strict majority of the newest
/// <see cref="FirstWindow"/> of them, widening the window (doubling, up to the whole history) when there is none. A
/// sequential stream has delta +n, a reverse one −n, a strided one its stride; a random one has no majority. Not
/// thread-safe: its owner serializes the calls. Pure, no allocation after construction.
/// </summary>
internal sealed class TrendDetector
{
    /// <summary>Deltas remembered.</summary>
    public const int History = 32;

    /// <summary>Deltas in the first, narrowest window.</summary>
    public const int FirstWindow = 4;

    /// <summary>Fewest deltas seen before a trend is named (three reads in a row are no trend yet).</summary>
    public const int MinimumDeltas = 3;

    private readonly long[] _deltas = new long[History];
    private int _count;
    private int _next;
    private long _last;
    private bool _started;

    /// <summary>Deltas remembered now (at most <see cref="History"/>).</summary>
    public int Count => _count;

    /// <summary>
    /// Records a read at <paramref name="position"/> (any unit: the prefetcher uses pages) and returns the trend: the
    /// majority delta over the newest deltas, or 0 when there is none (or it is 0: the same place read again).
    /// </summary>
    public long Record(long position)
    {
        if (_started)
        {
            _deltas[_next] = position - _last;
            _next = (_next + 1) % History;
            _count = Math.Min(_count + 1, History);
        }

        _started = true;
        _last = position;
        return Trend();
    }

    /// <summary>Forgets every delta (the stream restarts at the next read).</summary>
    public void Reset()
    {
        _count = 0;
        _next = 0;
        _started = false;
    }

    /// <summary>The majority delta of the newest deltas, widening the window until one is found or the history ends.</summary>
    public long Trend()
    {
        if (_count < MinimumDeltas)
        {
            return 0;
        }

        for (var window = Math.Min(FirstWindow, _count); ; window = Math.Min(window * 2, _count))
        {
            if (Majority(window) is { } delta)
            {
                return delta;
            }

            if (window == _count)
            {
                return 0;
            }
        }
    }

    /// <summary>Boyer-Moore vote over the newest <paramref name="window"/> deltas, then a count to confirm it is a strict majority.</summary>
    private long? Majority(int window)
    {
        long candidate = 0;
        var votes = 0;
        for (var i = 1; i <= window; i++)
        {
            var delta = Newest(i);
            if (votes == 0)
            {
                candidate = delta;
                votes = 1;
            }
            else
            {
                votes += delta == candidate ? 1 : -1;
            }
        }

        var count = 0;
        for (var i = 1; i <= window; i++)
        {
            count += Newest(i) == candidate ? 1 : 0;
        }

        return count * 2 > window ? candidate : null;
    }

    /// <summary>The i-th newest delta (1: the last one).</summary>
    private long Newest(int i) => _deltas[(_next - i + History) % History];
}
