using System.Diagnostics.Metrics;
using NUnit.Framework;
using Swap.Nbd.Protocol;
using Swap.Nbd.Server;

namespace Swap.Nbd.Tests.Metrics;

/// <summary>
/// What a request adds to the hot path once someone listens: the NBD instruments' updates allocate nothing (static
/// tag strings, no boxing). A listener that records into plain fields stands in for the exporter.
/// </summary>
[Category(Tier.Unit)]
[NonParallelizable] // allocation is counted per thread, but a listener sees every meter of the process
public sealed class MetricsHotPathTests
{
    [Test]
    public void Counting_a_request_allocates_nothing_while_listened_to()
    {
        using var metrics = new NbdMetrics(() => 0, TimeProvider.System, "SwapNbd.Nbd.HotPathTest");
        long count = 0;
        double seconds = 0;
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == "SwapNbd.Nbd.HotPathTest")
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((_, value, _, _) => count += value);
        listener.SetMeasurementEventCallback<double>((_, value, _, _) => seconds += value);
        listener.Start();

        for (var i = 0; i < 1000; i++)
        {
            metrics.Answered(NbdCommand.Read, metrics.Received(NbdCommand.Read, 4096));
        }

        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 100_000; i++)
        {
            metrics.Answered(NbdCommand.Read, metrics.Received(NbdCommand.Read, 4096));
            metrics.Answered(NbdCommand.Write, metrics.Received(NbdCommand.Write, 131072));
        }

        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.That(allocated, Is.Zero, "bytes allocated by 200,000 requests' instrument updates");
        Assert.That(count, Is.GreaterThan(200_000), "the listener saw the requests");
        Assert.That(seconds, Is.GreaterThanOrEqualTo(0));
    }
}
