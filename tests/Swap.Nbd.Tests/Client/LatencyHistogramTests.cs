using NUnit.Framework;
using Swap.Nbd.Client.Cli;

namespace Swap.Nbd.Tests.Client;

[Category(Tier.Unit)]
public sealed class LatencyHistogramTests
{
    [Test]
    public void Percentiles_are_within_two_percent_of_exact()
    {
        var histogram = new LatencyHistogram();
        var values = Enumerable.Range(1, 100_000).Select(i => (long)i * 37).ToArray();
        foreach (var v in values)
        {
            histogram.Record(v);
        }

        foreach (var p in new[] { 50.0, 99.0, 99.9 })
        {
            var exact = values[(int)Math.Ceiling(p / 100 * values.Length) - 1];
            Assert.That(histogram.Percentile(p), Is.EqualTo(exact).Within(2).Percent, $"p{p}");
        }

        Assert.That(histogram.Max, Is.EqualTo(values[^1]));
        Assert.That(histogram.Count, Is.EqualTo(values.Length));
    }

    [Test]
    public void Small_values_are_exact_and_merge_adds_counts()
    {
        var a = new LatencyHistogram();
        var b = new LatencyHistogram();
        a.Record(10);
        b.Record(20);
        b.Record(30);
        a.Add(b);
        Assert.That((a.Count, a.Percentile(50), a.Percentile(100), a.Max), Is.EqualTo((3L, 20L, 30L, 30L)));
    }

    [Test]
    public void Bucket_index_covers_the_whole_long_range()
    {
        foreach (var v in new[] { 0L, 63, 64, 127, 128, 1 << 20, long.MaxValue })
        {
            var (low, width) = LatencyHistogram.BucketRange(LatencyHistogram.IndexOf(v));
            Assert.That(v, Is.InRange(low, low + (width - 1)), $"value {v}");
        }
    }
}
