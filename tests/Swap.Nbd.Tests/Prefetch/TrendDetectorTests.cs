using NUnit.Framework;
using Swap.Slabs.Prefetch;

namespace Swap.Nbd.Tests.Prefetch;

/// <summary><see cref="TrendDetector"/>: Leap's majority over the newest deltas, widening when there is none.</summary>
[Category(Tier.Unit)]
public sealed class TrendDetectorTests
{
    private static long Feed(params long[] positions)
    {
        var detector = new TrendDetector();
        long trend = 0;
        foreach (var position in positions)
        {
            trend = detector.Record(position);
        }

        return trend;
    }

    [TestCase(new long[] { 10, 11, 12, 13 }, 1, TestName = "Sequential pages")]
    [TestCase(new long[] { 100, 99, 98, 97, 96 }, -1, TestName = "Reverse pages")]
    [TestCase(new long[] { 0, 3, 6, 9, 12 }, 3, TestName = "A stride of three pages")]
    [TestCase(new long[] { 0, 8, 16, 24 }, 8, TestName = "Sequential 32 KiB reads (a readahead cluster)")]
    [TestCase(new long[] { 5, 6, 7, 400, 401, 402, 403 }, 1, TestName = "One jump in a sequential stream")]
    [TestCase(new long[] { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 50, 27, 700, 51, 52 }, 1, TestName = "No majority among the newest, one when widened")]
    public void A_trend_is_found(long[] positions, long expected) => Assert.That(Feed(positions), Is.EqualTo(expected));

    [TestCase(new long[] { 7, 1000, 33, 512, 9, 77, 4096, 3 }, TestName = "Random pages")]
    [TestCase(new long[] { 1, 2, 3 }, TestName = "Two deltas are not yet a trend")]
    [TestCase(new long[] { 4, 4, 4, 4, 4 }, TestName = "The same page again and again")]
    [TestCase(new long[] { 0, 1, 2, 50, 70, 95 }, TestName = "Too few alike after a jump")]
    public void No_trend_is_named(long[] positions) => Assert.That(Feed(positions), Is.Zero);

    [Test]
    public void A_random_stream_after_a_sequential_one_loses_the_trend_within_the_history()
    {
        var detector = new TrendDetector();
        for (var page = 0; page < 40; page++)
        {
            detector.Record(page);
        }

        Assert.That(detector.Trend(), Is.EqualTo(1));
        var random = new Random(5);
        var trend = 1L;
        for (var i = 0; i < TrendDetector.History; i++)
        {
            trend = detector.Record(random.NextInt64(1, 1 << 20));
        }

        Assert.That(trend, Is.Zero);
        Assert.That(detector.Count, Is.EqualTo(TrendDetector.History));
        detector.Reset();
        Assert.That(detector.Count, Is.Zero);
    }
}
