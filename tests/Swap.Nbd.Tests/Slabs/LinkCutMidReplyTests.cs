using Microsoft.Extensions.Logging.Abstractions;
using NUnit.Framework;
using Swap.Daemon.Protocol;
using Swap.Nbd.Tests.Donor;
using Swap.Nbd.Tests.Support;
using Swap.Slabs.Remote;

namespace Swap.Nbd.Tests.Slabs;

/// <summary>
/// A link that fails while the receive thread is in the middle of a READ reply's data: that request was claimed by
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
}
