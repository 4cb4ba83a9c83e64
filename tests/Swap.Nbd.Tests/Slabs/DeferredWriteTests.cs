using Microsoft.Extensions.Logging.Abstractions;
using NUnit.Framework;
using Swap.Nbd.Tests.Donor;
using Swap.Nbd.Tests.Support;
using Swap.Slabs.Remote;

namespace Swap.Nbd.Tests.Slabs;

/// <summary>
/// <see cref="DaemonLink.WriteAsync"/> with <c>defer: true</c>: a small WRITE waits in the link's send buffer and
/// leaves with the next request to that daemon, or at the watchdog's tick (the link's clock is a fake one here, so
/// the tick comes only when the test advances it).
/// </summary>
[Category(Tier.Integration)]
public sealed class DeferredWriteTests
{
    [Test]
    [CancelAfter(30_000)]
    public async Task A_deferred_write_leaves_with_the_next_request_or_at_the_watchdog_tick_in_order(CancellationToken ct)
    {
        await using var donor = new TestDonor();
        var time = new Microsoft.Extensions.Time.Testing.FakeTimeProvider();
        var settings = new DaemonLinkSettings { AuthKey = TestKeys.Cluster };
        using var link = await DaemonLink.ConnectAsync(donor.Daemon.EndPoints[0], 7, settings, time, NullLogger.Instance, ct);
        var grant = (await link.AllocSlabAsync(TestDonor.Slab, 0)).Grant;
        var page = new byte[4096];

        Array.Fill(page, (byte)1);
        var first = link.WriteAsync(grant, 0, page, defer: true).AsTask();
        Array.Fill(page, (byte)2); // the frame holds its own copy
        // Held in the link's send buffer; only the next request or the watchdog (on the fake clock) sends it.
        Assert.That(link.DeferredBytes, Is.GreaterThan(0), "a deferred write is not sent on its own");
        Assert.That(first.IsCompleted, Is.False, "a deferred write is not sent on its own");

        // The next request takes it along, ahead of itself: the read sees the write.
        var back = new byte[4096];
        var read = await link.ReadAsync(grant, 0, back);
        var written = await first;
        Assert.Multiple(() =>
        {
            Assert.That(written.Ok, Is.True);
            Assert.That(read.Ok, Is.True);
            Assert.That(back, Is.All.EqualTo((byte)1), "the write reached the daemon before the read");
        });

        var second = link.WriteAsync(grant, 4096, page, defer: true).AsTask();
        Assert.That(link.DeferredBytes, Is.GreaterThan(0));
        Assert.That(second.IsCompleted, Is.False);
        time.Advance(settings.HeartbeatInterval / 4); // the watchdog's period with these settings
        Assert.That((await second.WaitAsync(TimeSpan.FromSeconds(10), ct)).Ok, Is.True, "the watchdog's tick sends what waits");
        Assert.That(link.DeferredBytes, Is.Zero);

        // Not deferred: sent at once.
        Assert.That((await link.WriteAsync(grant, 8192, page).AsTask().WaitAsync(TimeSpan.FromSeconds(10), ct)).Ok, Is.True);
    }
}
