using NUnit.Framework;
using Swap.Slabs.Remote;

namespace Swap.Nbd.Tests.Hedging;

/// <summary>
/// <see cref="ReadLatency"/>, the per-link histogram the hedging bound is drawn from: its buckets, the p90 it
/// follows, the tail it ignores, and how it forgets.
/// </summary>
[Category(Tier.Unit), Parallelizable(ParallelScope.Self)]
public sealed class ReadLatencyTests
{
    // Nanosecond timestamps, so a recorded tick is a nanosecond.
    private const long Frequency = 1_000_000_000;

    [Test]
    public void Every_latency_lies_below_its_buckets_upper_edge_and_at_or_above_the_previous_one()
    {
        var random = new Random(3);
        for (var i = 0; i < 100_000; i++)
        {
            var value = i < 64 ? i : (long)Math.Exp(random.NextDouble() * 40);
            var bucket = ReadLatency.BucketOf(value);
            Assert.That(value, Is.LessThan(ReadLatency.UpperEdge(bucket)), $"{value} in bucket {bucket}");
            if (bucket > 0)
            {
                Assert.That(value, Is.GreaterThanOrEqualTo(ReadLatency.UpperEdge(bucket - 1)), $"{value} in bucket {bucket}");
            }
        }

        // Four buckets per power of two: an edge is at most 25 % above the latency it stands for.
        Assert.That(ReadLatency.UpperEdge(ReadLatency.BucketOf(100_000)), Is.InRange(100_001, 125_000));
    }

    [Test]
    public void No_estimate_before_enough_samples()
    {
        var latency = new ReadLatency(Frequency);
        for (var i = 0; i < ReadLatency.MinimumSamples - 1; i++)
        {
            latency.Record(50_000);
        }

        Assert.That(latency.EstimateNanoseconds, Is.EqualTo(-1));
        latency.Record(50_000);
        Assert.That(latency.EstimateNanoseconds, Is.InRange(50_001, 62_500));
    }

    [Test]
    public void The_estimate_is_the_p90_and_a_retransmission_tail_does_not_move_it()
    {
        var latency = new ReadLatency(Frequency);
        var random = new Random(11);
        for (var i = 0; i < 20_000; i++)
        {
            // 60-140 µs uniformly (p90 = 132 µs), and 4 % of reads waiting 200 ms for TCP's retransmission timer.
            latency.Record(random.Next(100) < 4 ? 200_000_000 : 60_000 + random.Next(80_001));
        }

        Assert.That(latency.EstimateNanoseconds, Is.InRange(132_000, 165_000), "the p90 of the fast reads, bucket-rounded up");
    }

    [Test]
    public void The_estimate_follows_a_link_that_got_slower_and_faster_again()
    {
        var latency = new ReadLatency(Frequency);
        Record(latency, 10_000, 50_000);
        Assert.That(latency.EstimateNanoseconds, Is.InRange(50_001, 62_500));

        Record(latency, 10 * ReadLatency.Window, 1_000_000);
        Assert.That(latency.EstimateNanoseconds, Is.InRange(1_000_001, 1_250_000), "ten windows later the old latency is forgotten");

        Record(latency, 10 * ReadLatency.Window, 50_000);
        Assert.That(latency.EstimateNanoseconds, Is.InRange(50_001, 62_500));
    }

    [Test]
    public void Recording_allocates_nothing()
    {
        var latency = new ReadLatency(Frequency);
        Record(latency, 5000, 70_000);
        var before = GC.GetAllocatedBytesForCurrentThread();
        Record(latency, 50_000, 80_000);
        Assert.That(GC.GetAllocatedBytesForCurrentThread() - before, Is.Zero);
    }

    private static void Record(ReadLatency latency, int count, long nanoseconds)
    {
        for (var i = 0; i < count; i++)
        {
            latency.Record(nanoseconds);
        }
    }
}
