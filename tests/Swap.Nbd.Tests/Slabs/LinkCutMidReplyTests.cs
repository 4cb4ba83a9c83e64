using Microsoft.Extensions.Logging.Abstractions;
using NUnit.Framework;
using Swap.Daemon.Protocol;
using Swap.Nbd.Tests.Donor;
using Swap.Nbd.Tests.Support;
using Swap.Slabs.Remote;

namespace Swap.Nbd.Tests.Slabs;

/// <summary>
/// Links that fail under requests. One that fails while the receive thread is in the middle of a READ reply's data: that request was claimed by
/// the receive thread (nobody else may complete it), so the receive thread must fail it on its way out. It did not,
/// and the read waited forever (the watchdog stops looking at a dead link): the hang found when every donor lied at
/// once and one link was killed while another thread was reading its reply.
/// </summary>
[Category(Tier.Integration)]
public sealed class LinkCutMidReplyTests
{
    [Test]
    [CancelAfter(30_000)]
    public async Task A_read_whose_reply_is_cut_midway_fails_instead_of_waiting_forever(CancellationToken ct)
    {
        await using var donor = new TestDonor();
        using var tap = new TapProxy(donor.Daemon.EndPoints[0]);
        using var link = await DaemonLink.ConnectAsync(tap.EndPoint, 31, new DaemonLinkSettings { AuthKey = TestKeys.Cluster }, TimeProvider.System, NullLogger.Instance, ct);
        var grant = (await link.AllocSlabAsync(TestDonor.Slab, 0)).Grant;
        var data = DonorTestClient.Pattern(64 << 10, 5);
        Assert.That((await link.WriteAsync(grant, 0, data)).Status, Is.EqualTo(DaemonStatus.Ok));

        // The reply's header and the first 1000 bytes of its 64 KiB of data, then the connection is gone.
        tap.CutDownstreamAfter(DaemonFrameHeader.Size + 1000);
        var read = link.ReadAsync(grant, 0, new byte[64 << 10]).AsTask();

        Assert.That(async () => await read.WaitAsync(TimeSpan.FromSeconds(10), ct), Throws.TypeOf<DaemonLinkException>());
        Assert.That(link.IsAlive, Is.False);
    }

    /// <summary>
    /// Requests racing the link's death from many threads, and requests after it: each one fails (never waits for a
    /// receive thread that has gone), whether its slot was swept, its send failed or it found the link dead.
    /// </summary>
    [Test]
    [CancelAfter(30_000)]
    public async Task Requests_racing_the_links_death_and_after_it_all_fail_promptly(CancellationToken ct)
    {
        await using var donor = new TestDonor();
        using var tap = new TapProxy(donor.Daemon.EndPoints[0]);
        using var link = await DaemonLink.ConnectAsync(tap.EndPoint, 32, new DaemonLinkSettings { AuthKey = TestKeys.Cluster }, TimeProvider.System, NullLogger.Instance, ct);
        var grant = (await link.AllocSlabAsync(TestDonor.Slab, 0)).Grant;
        var data = DonorTestClient.Pattern(4096, 6);
        Assert.That((await link.WriteAsync(grant, 0, data)).Status, Is.EqualTo(DaemonStatus.Ok));

        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var outcomes = new System.Collections.Concurrent.ConcurrentBag<string>();
        var issuers = Enumerable.Range(0, 4).Select(_ => Task.Run(async () =>
        {
            var buffer = new byte[4096];
            while (!stop.IsCancellationRequested)
            {
                try
                {
                    var reply = await link.ReadAsync(grant, 0, buffer).AsTask().WaitAsync(TimeSpan.FromSeconds(10), ct);
                    outcomes.Add(reply.Status.ToString());
                }
                catch (DaemonLinkException)
                {
                    outcomes.Add("failed");
                }
            }
        }, ct)).ToList();

        await Task.Delay(200, ct);
        link.Kill("killed by the test while requests race it");
        await Task.Delay(200, ct);
        await stop.CancelAsync();
        // A request that waited for a receive thread that is gone would surface here as a TimeoutException.
        await Task.WhenAll(issuers);

        Assert.That(outcomes, Has.Some.EqualTo(nameof(DaemonStatus.Ok)), "requests were answered before the death");
        Assert.That(outcomes, Has.Some.EqualTo("failed"), "and failed after it");
        Assert.That(link.IsAlive, Is.False);
        Assert.That(async () => await link.ReadAsync(grant, 0, new byte[4096]).AsTask().WaitAsync(TimeSpan.FromSeconds(5), ct),
            Throws.TypeOf<DaemonLinkException>(), "a request on the dead link fails at once");
    }
}
