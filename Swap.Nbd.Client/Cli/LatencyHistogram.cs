using System.Numerics;

namespace Swap.Nbd.Client.Cli;

/// <summary>
/// HdrHistogram-style latency histogram: 64 linear sub-buckets per power of two, so any recorded value is
/// reported within about 1.6 %, in fixed memory and with no allocation per sample. Not thread-safe: one per worker, merged at the end.
/// </summary>
internal sealed class LatencyHistogram
{
    private const int SubBucketBits = 6;
    private const int SubBuckets = 1 << SubBucketBits;
    private const int BucketCount = SubBuckets + ((64 - SubBucketBits) * SubBuckets);

    private readonly long[] _counts = new long[BucketCount];

    public long Count { get; private set; }
    public long Max { get; private set; }
    public double Sum { get; private set; }

    public double Mean => Count == 0 ? 0 : Sum / Count;

    public void Record(long value)
    {
        value = Math.Max(0, value);
        _counts[IndexOf(value)]++;
        Count++;
        Sum += value;
        Max = Math.Max(Max, value);
    }

    public void Add(LatencyHistogram other)
    {
        for (var i = 0; i < _counts.Length; i++)
        {
            _counts[i] += other._counts[i];
        }

        Count += other.Count;
        Sum += other.Sum;
        Max = Math.Max(Max, other.Max);
    }

    /// <summary>The value at or below which <paramref name="percentile"/> % of samples fall (bucket midpoint, never above Max).</summary>
    public long Percentile(double percentile)
    {
        if (Count == 0)
        {
            return 0;
        }

        var rank = (long)Math.Ceiling(percentile / 100.0 * Count);
        rank = Math.Clamp(rank, 1, Count);
        long seen = 0;
        for (var i = 0; i < _counts.Length; i++)
        {
            seen += _counts[i];
            if (seen >= rank)
            {
                var (low, width) = BucketRange(i);
                return Math.Min(Max, low + (width / 2));
            }
        }

        return Max;
    }

    internal static int IndexOf(long value)
    {
        if (value < SubBuckets)
        {
            return (int)value;
        }

        var magnitude = 63 - BitOperations.LeadingZeroCount((ulong)value);
        var shift = magnitude - SubBucketBits;
        var sub = (int)(value >> shift) - SubBuckets;
        return SubBuckets + (shift * SubBuckets) + sub;
    }

    internal static (long Low, long Width) BucketRange(int index)
    {
        if (index < SubBuckets)
        {
            return (index, 1);
        }

        var shift = (index - SubBuckets) / SubBuckets;
        var sub = (index - SubBuckets) % SubBuckets;
        return ((long)(SubBuckets + sub) << shift, 1L << shift);
    }
}
