using NUnit.Framework;
using Swap.Slabs.Remote;

namespace Swap.Nbd.Tests.Hedging;

/// <summary>
/// <see cref="ReadLatency"/>, the per-link histogram the hedging bound is drawn from: its buckets, the median it
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
    public void The_estimate_is_the_median_and_a_retransmission_tail_does_not_move_it()
    {
        var latency = new ReadLatency(Frequency);
        var random = new Random(11);
        for (var i = 0; i < 20_000; i++)
        {
            // 60-140 µs uniformly (median 100 µs), and 4 % of reads waiting 200 ms for TCP's retransmission timer.
            latency.Record(random.Next(100) < 4 ? 200_000_000 : 60_000 + random.Next(80_001));
        }

        Assert.That(latency.EstimateNanoseconds, Is.InRange(100_000, 131_072), "the median of the fast reads, bucket-rounded up");
    }

    [Test]
    public void A_stall_that_answers_a_burst_of_late_reads_at_once_does_not_move_the_estimate()
    {
        // What a hedged link at QD1 records when a lost segment stalls it for 200 ms: the reads sent meanwhile (each
        // already answered from the disk) all come back together, a fifth of the link's recent reads. A p90 went to
        // 200 ms here and stayed there for the next 500 normal reads.
        var latency = new ReadLatency(Frequency);
        var random = new Random(12);
        for (var i = 0; i < 1000; i++)
        {
            latency.Record(60_000 + random.Next(80_001));
        }

        var before = latency.EstimateNanoseconds;
        Record(latency, 300, 200_000_000);
        Assert.That(latency.EstimateNanoseconds, Is.LessThanOrEqualTo(before * 5 / 4), "one bucket up at most");
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
