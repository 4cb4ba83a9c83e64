using System.Net;
using NUnit.Framework;
using Swap.Nbd.Client;
using Swap.Nbd.Tests.Support;

namespace Swap.Nbd.Tests.Placement;

/// <summary>
/// The daemon set changing under a running workload (what a portal reload does, through <c>SwapDevice.SetDaemons</c>):
/// a daemon that joins takes slabs, one that leaves is drained (its slabs go to the others, it holds none of this
/// server's slabs and its link is closed) with zero mismatches against the reference model and no error at the client.
/// </summary>
[Category(Tier.Integration)]
public sealed class DaemonDrainTests
{
    private const int Size = 16 << 20;

    [Test]
    [CancelAfter(120_000)]
    public async Task A_daemon_that_joins_takes_slabs_and_one_that_leaves_is_drained_with_nothing_lost(CancellationToken ct)
    {
        await using var cluster = await SlabCluster.StartAsync(3, Size);
        await using var newcomer = await TestDaemon.StartAsync(process: false);
        await using var pool = await NbdClientPool.ConnectAsync(cluster.Uri, 2, new NbdClientOptions(), ct);
        var workload = new ReferenceWorkload(Size, 23, cache: false);
        await workload.FillAsync(pool, ct);
        await cluster.WaitSettledAsync(ct);
        var victim = await cluster.VictimAsync(ct);
        var victimName = cluster.Daemons[victim].Name;
        var victimSlabs = cluster.Device.GetStats().Daemons[victim].Slabs;
        Task? drained = null;
        await workload.RunAsync(pool, 24, ct, async batch =>
        {
            if (batch == 4)
            {
                var change = cluster.Device.SetDaemons([.. Endpoints(cluster.Daemons), .. Endpoints([newcomer])]);
                Assert.That(change.Added, Is.EqualTo(new[] { newcomer.Name }));
                Assert.That(change.Removed, Is.Empty);
                await cluster.WaitForAsync(s => s.Daemons.Any(d => d.Name == newcomer.Name && d.Up), "the newcomer's link is up", ct);
            }
            else if (batch == 8)
            {
                var change = cluster.Device.SetDaemons([.. Endpoints(cluster.Daemons.Where((_, i) => i != victim)), .. Endpoints([newcomer])]);
                Assert.That(change.Removed, Is.EqualTo(new[] { victimName }));
                Assert.That(cluster.Device.GetStats().Daemons.Single(d => d.Name == victimName).State, Is.AnyOf("draining", "up"));
                drained = change.Drained;
            }
        });
        await drained!.WaitAsync(TimeSpan.FromSeconds(30), ct);
        await cluster.WaitSettledAsync(ct);
        await workload.VerifyAllAsync(pool, ct);

        var stats = cluster.Device.GetStats();
        var victimConnections = await cluster.Daemons[victim].SettledConnectionsAsync(0, ct);
        TestContext.Out.WriteLine(cluster.Log.Entries.FirstOrDefault(e => e.EventId.Id == EventIds.DaemonDrained)?.Message);
        TestContext.Out.WriteLine($"longest request {workload.LongestRequest.TotalMilliseconds:0.0} ms over {workload.Operations} operations");
        Assert.Multiple(() =>
        {
            Assert.That(workload.Mismatches, Is.Zero, "every read matched the reference model");
            Assert.That(stats.Daemons.Select(d => d.Name), Does.Not.Contain(victimName), "the drained daemon left the pool");
            Assert.That(cluster.Daemons[victim].Daemon!.SlabCount, Is.Zero, $"the drained daemon holds none of its {victimSlabs} slabs (freed)");
            Assert.That(victimConnections, Is.Zero, "its link is closed");
            Assert.That(stats.Daemons.Single(d => d.Name == newcomer.Name).Slabs, Is.GreaterThan(0), "the newcomer took slabs");
            Assert.That(stats.MappedSlabs, Is.EqualTo(cluster.Device.SlabsWithData()), "every slab is on a daemon again");
            Assert.That(cluster.Log.Entries.Any(e => e.EventId.Id == EventIds.DaemonDrained && e.Message.Contains(victimName, StringComparison.Ordinal)));
        });
    }

    [Test]
    [CancelAfter(120_000)]
    public async Task With_no_daemon_left_a_drained_daemons_slabs_stay_on_the_backup_disk(CancellationToken ct)
    {
        await using var cluster = await SlabCluster.StartAsync(1, Size);
        await using var pool = await NbdClientPool.ConnectAsync(cluster.Uri, 2, new NbdClientOptions(), ct);
        var workload = new ReferenceWorkload(Size, 29, cache: false);
        await workload.FillAsync(pool, ct);
        await cluster.WaitSettledAsync(ct);
        Task? drained = null;
        await workload.RunAsync(pool, 12, ct, batch =>
        {
            if (batch == 3)
            {
                drained = cluster.Device.SetDaemons([]).Drained;
            }

            return Task.CompletedTask;
        });
        await drained!.WaitAsync(TimeSpan.FromSeconds(30), ct);
        await workload.VerifyAllAsync(pool, ct);

        var stats = cluster.Device.GetStats();
        Assert.Multiple(() =>
        {
            Assert.That(workload.Mismatches, Is.Zero);
            Assert.That(stats.Daemons, Is.Empty);
            Assert.That(stats.MappedSlabs, Is.Zero);
            Assert.That(stats.PagesRemote, Is.Zero);
            Assert.That(cluster.Daemons[0].Daemon!.SlabCount, Is.Zero);
        });
    }

    [Test]
    [CancelAfter(60_000)]
    public async Task A_daemon_back_in_the_list_before_its_drain_ends_stays(CancellationToken ct)
    {
        // The drain has just begun (it frees slabs on the daemon, one round trip each) when the daemon comes back.
        await using var cluster = await SlabCluster.StartAsync(2, Size, configureDevice: o => o with { DrainTimeout = TimeSpan.FromSeconds(20) });
        await using var pool = await NbdClientPool.ConnectAsync(cluster.Uri, 2, new NbdClientOptions(), ct);
        var workload = new ReferenceWorkload(Size, 31, cache: false);
        await workload.FillAsync(pool, ct);
        await cluster.WaitSettledAsync(ct);
        var all = Endpoints(cluster.Daemons).ToList();
        var leaving = cluster.Device.SetDaemons(all.Take(1).ToList());
        var back = cluster.Device.SetDaemons(all);
        Assert.That(back.Added, Is.EqualTo(new[] { cluster.Daemons[1].Name }));
        await leaving.Drained.WaitAsync(TimeSpan.FromSeconds(30), ct);
        await workload.RunAsync(pool, 6, ct);
        await cluster.WaitForAsync(s => s.Daemons.Count == 2 && s.Daemons.All(d => d.State == "up"), "both daemons up", ct);
        await cluster.WaitSettledAsync(ct);
        await workload.VerifyAllAsync(pool, ct);
        Assert.Multiple(() =>
        {
            Assert.That(workload.Mismatches, Is.Zero);
            Assert.That(cluster.Device.GetStats().Daemons.Select(d => d.State), Is.EqualTo(new[] { "up", "up" }));
            Assert.That(cluster.Daemons[1].Daemon!.ConnectionCount, Is.EqualTo(1), "its link stayed open");
        });
    }

    private static IEnumerable<(string, EndPoint)> Endpoints(IEnumerable<TestDaemon> daemons) =>
        daemons.Select(d => (d.Name, (EndPoint)new IPEndPoint(IPAddress.Loopback, d.Port)));
}
