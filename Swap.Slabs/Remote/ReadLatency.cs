using System.Numerics;

namespace Swap.Slabs.Remote;

/// <summary>
/// Recent READ latencies of one daemon link, the basis of its hedging bound: a log-linear histogram (four buckets
/// per power of two, so a bucket is at most 25 % wide) that halves itself every <see cref="Window"/> samples, so it
/// follows the link within a few thousand reads and forgets a bad minute. Lock-free and allocation-free; the receive
/// thread records, any thread reads <see cref="EstimateNanoseconds"/>, which is refreshed every 16 samples.
/// A quantile rather than a mean, and the median by default: reads that waited for a TCP retransmission sit above it
/// and do not drag the bound up to the very delay hedging is there to cut, even when a stall answers a burst of them
/// at once (a fifth of a link's recent reads at QD1; a p90 followed such a burst to the cap).
/// </summary>
internal sealed class ReadLatency
{
    /// <summary>Samples between two halvings of the histogram.</summary>
    public const int Window = 1024;

    /// <summary>No estimate before this many samples.</summary>
    public const int MinimumSamples = 32;

    private const int SubBits = 2;
    private const int Buckets = 64 << SubBits;
    private const int RefreshMask = 15;

    private readonly int[] _counts = new int[Buckets];
    private readonly double _nanosecondsPerTick;
    private readonly double _quantile;
    private int _samples;
    private long _estimate = -1;

    /// <param name="timestampFrequency">Ticks per second of the timestamps whose differences are recorded.</param>
    /// <param name="quantile">Which quantile <see cref="EstimateNanoseconds"/> follows (0.5: the median).</param>
    public ReadLatency(long timestampFrequency, double quantile = 0.5)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(timestampFrequency);
        if (quantile is <= 0 or >= 1)
        {
            throw new ArgumentOutOfRangeException(nameof(quantile), "a quantile lies strictly between 0 and 1");
        }

        _nanosecondsPerTick = 1e9 / timestampFrequency;
        _quantile = quantile;
    }

    /// <summary>The recent quantile in nanoseconds (the upper edge of its bucket); -1 before <see cref="MinimumSamples"/> samples.</summary>
    public long EstimateNanoseconds => Volatile.Read(ref _estimate);

    /// <summary>Samples recorded so far.</summary>
    public int Samples => Volatile.Read(ref _samples);

    /// <summary>Records one READ that took <paramref name="ticks"/> timestamp ticks from send to reply.</summary>
    public void Record(long ticks)
    {
        var nanoseconds = Math.Max(1, (long)(ticks * _nanosecondsPerTick));
        Interlocked.Increment(ref _counts[BucketOf(nanoseconds)]);
        var n = Interlocked.Increment(ref _samples);
        if (n % Window == 0)
        {
            Decay();
        }

        if ((n & RefreshMask) == 0 && n >= MinimumSamples)
        {
            Volatile.Write(ref _estimate, Quantile());
        }
    }

    /// <summary>The bucket of a latency: its value below 4 ns, else 4 per power of two by the two bits after the top one.</summary>
    internal static int BucketOf(long nanoseconds)
    {
        if (nanoseconds < (1 << SubBits))
        {
            return (int)nanoseconds;
        }

        var log = 63 - BitOperations.LeadingZeroCount((ulong)nanoseconds);
        return ((log - SubBits + 1) << SubBits) + (int)((nanoseconds >> (log - SubBits)) & ((1 << SubBits) - 1));
    }

    /// <summary>The first latency above the bucket (exclusive upper edge).</summary>
    internal static long UpperEdge(int bucket)
    {
        if (bucket < (1 << SubBits))
        {
            return bucket + 1;
        }

        var log = (bucket >> SubBits) + SubBits - 1;
        var sub = bucket & ((1 << SubBits) - 1);
        return ((1L << SubBits) + sub + 1) << (log - SubBits);
    }

    private long Quantile()
    {
        long total = 0;
        for (var bucket = 0; bucket < _counts.Length; bucket++)
        {
            total += Volatile.Read(ref _counts[bucket]);
        }

        var target = Math.Max(1, (long)Math.Ceiling(total * _quantile));
        long seen = 0;
        for (var bucket = 0; bucket < _counts.Length; bucket++)
        {
            seen += Volatile.Read(ref _counts[bucket]);
            if (seen >= target)
            {
                return UpperEdge(bucket);
            }
        }

        return UpperEdge(_counts.Length - 1);
    }

    /// <summary>Halves every bucket; a sample racing a halving may be halved too, which a window of 1024 does not notice.</summary>
    private void Decay()
    {
        for (var bucket = 0; bucket < _counts.Length; bucket++)
        {
            int count;
            do
            {
                count = Volatile.Read(ref _counts[bucket]);
            }
            while (Interlocked.CompareExchange(ref _counts[bucket], count >> 1, count) != count);
        }
    }
}
