using NUnit.Framework;
using Swap.Nbd.Client;
using Swap.Nbd.Tests.Faults;
using Swap.Nbd.Tests.Support;

namespace Swap.Nbd.Tests.Sealing;

/// <summary>
/// A malicious donor (<see cref="DonorLies"/> over an in-process daemon's connections) that flips bits, returns
/// another page of the slab, another server's page, an older version, zeros, or drops writes while answering OK.
/// Under a random workload checked against a reference model: zero mismatches, zero NBD errors (any would throw),
/// every lie noticed and counted against the lying daemon and no other, and logged.
/// </summary>
[Category(Tier.Integration)]
public sealed class MaliciousDonorTests
{
    private const int Size = 16 << 20;
    private const int Batches = 16;
    private const int LieAt = 5;

    [TestCase(DonorLie.FlipBit)]
    [TestCase(DonorLie.OtherPage)]
    [TestCase(DonorLie.OlderVersion)]
    [TestCase(DonorLie.Zeros)]
    [TestCase(DonorLie.DropWrites)]
    [CancelAfter(120_000)]
    public async Task A_lying_donor_costs_reads_from_the_disk_never_data(DonorLie lie, CancellationToken ct)
    {
        await using var cluster = await SlabCluster.StartAsync(3, Size);
        foreach (var daemon in cluster.Daemons)
        {
            daemon.Faults.Lies.Slabs = daemon.Daemon!.Slabs;
            daemon.Faults.Lies.Record = lie == DonorLie.OlderVersion;
        }

        await using var pool = await NbdClientPool.ConnectAsync(cluster.Uri, 2, new NbdClientOptions(), ct);
        var workload = new ReferenceWorkload(Size, 17, cache: false);
        // Every page written once and on a daemon, so every daemon holds sealed pages (and each page a first version).
        await workload.FillAsync(pool, ct);
        await cluster.WaitSettledAsync(ct);

        var victim = -1;
        await workload.RunAsync(pool, Batches, ct, async batch =>
        {
            if (batch == LieAt)
            {
                await cluster.WaitSettledAsync(ct);
                victim = await cluster.VictimAsync(ct);
                cluster.Daemons[victim].Faults.Lies.Active = lie;
                // Every page read once right away: the victim's slabs hold valid pages now, so the lie is met.
                await workload.VerifyAllAsync(pool, ct);
            }
        });
        await workload.VerifyAllAsync(pool, ct);

        var stats = cluster.Device.GetStats();
        var lies = cluster.Daemons[victim].Faults.Lies.Told;
        Assert.Multiple(() =>
        {
            Assert.That(workload.Mismatches, Is.Zero, "every byte read is the byte written");
            Assert.That(lies, Is.GreaterThan(0), "the donor lied");
            Assert.That(stats.OpenFailures, Is.GreaterThan(0), "the lies were noticed: pages failed to open");
            Assert.That(stats.Daemons[victim].OpenFailures, Is.EqualTo(stats.OpenFailures), "all of them against the liar");
            Assert.That(cluster.Log.Entries.Count(e => e.EventId.Id == EventIds.PageOpenFailed && e.Message.Contains(cluster.Daemons[victim].Name, StringComparison.Ordinal)),
                Is.EqualTo(stats.OpenFailures), "each logged, naming the daemon");
        });
    }

    [Test]
    [CancelAfter(120_000)]
    public async Task A_donor_that_returns_another_servers_pages_is_caught(CancellationToken ct)
    {
        await using var first = await SlabCluster.StartAsync(2, Size);
        await using var second = await SlabCluster.StartAsync(0, Size, sharedDaemons: first.Daemons);
        foreach (var daemon in first.Daemons)
        {
            daemon.Faults.Lies.Slabs = daemon.Daemon!.Slabs;
        }

        await using var firstPool = await NbdClientPool.ConnectAsync(first.Uri, 2, new NbdClientOptions(), ct);
        await using var secondPool = await NbdClientPool.ConnectAsync(second.Uri, 2, new NbdClientOptions(), ct);
        var firstWorkload = new ReferenceWorkload(Size, 21, cache: false);
        var secondWorkload = new ReferenceWorkload(Size, 22, cache: false);
        // Both servers write every page: the same places, the same first versions, two keys.
        await firstWorkload.FillAsync(firstPool, ct);
        await secondWorkload.FillAsync(secondPool, ct);
        await first.WaitSettledAsync(ct);
        await second.WaitSettledAsync(ct);

        // One daemon that holds slabs of both lies. Every page is read once at once, the two servers slab by slab in
        // turn: each slab that fails leaves the daemon, so the lie needs the other server's slabs still there.
        var victim = Enumerable.Range(0, first.Daemons.Length).First(i =>
            first.Device.GetStats().Daemons[i].Slabs > 0 && second.Device.GetStats().Daemons[i].Slabs > 0);
        first.Daemons[victim].Faults.Lies.Active = DonorLie.OtherServersPage;
        for (var offset = 0; offset < Size; offset += 1 << 20)
        {
            await firstWorkload.VerifyAsync(firstPool, offset, 1 << 20, ct);
            await secondWorkload.VerifyAsync(secondPool, offset, 1 << 20, ct);
        }

        await Task.WhenAll(firstWorkload.RunAsync(firstPool, Batches / 2, ct), secondWorkload.RunAsync(secondPool, Batches / 2, ct));
        await firstWorkload.VerifyAllAsync(firstPool, ct);
        await secondWorkload.VerifyAllAsync(secondPool, ct);

        Assert.Multiple(() =>
        {
            Assert.That(firstWorkload.Mismatches + secondWorkload.Mismatches, Is.Zero);
            Assert.That(first.Daemons[victim].Faults.Lies.Told, Is.GreaterThan(0), "the donor served pages across servers");
            Assert.That(first.Device.GetStats().OpenFailures, Is.GreaterThan(0), "the first server caught them");
            Assert.That(second.Device.GetStats().OpenFailures, Is.GreaterThan(0), "the second server caught them");
        });
    }

    [Test]
    [CancelAfter(120_000)]
    public async Task A_daemon_whose_slabs_keep_failing_to_open_is_failed(CancellationToken ct)
    {
        await using var cluster = await SlabCluster.StartAsync(2, Size);
        await using var pool = await NbdClientPool.ConnectAsync(cluster.Uri, 2, new NbdClientOptions(), ct);
        var workload = new ReferenceWorkload(Size, 23, cache: false);
        await workload.FillAsync(pool, ct);
        await cluster.WaitSettledAsync(ct);
        var victim = cluster.Device.GetStats().Daemons.ToList().FindIndex(d => d.Slabs >= 3);
        Assert.That(victim, Is.Not.Negative, "a daemon holds 3 slabs or more");

        cluster.Daemons[victim].Faults.Lies.Active = DonorLie.Zeros;
        await workload.VerifyAllAsync(pool, ct);

        Assert.Multiple(() =>
        {
            Assert.That(workload.Mismatches, Is.Zero);
            Assert.That(cluster.Log.Entries.Any(e => e.EventId.Id == EventIds.DaemonUntrusted && e.Message.Contains(cluster.Daemons[victim].Name, StringComparison.Ordinal)),
                "3 slabs failing within a minute failed the daemon");
            Assert.That(cluster.Log.Entries.Any(e => e.EventId.Id == EventIds.LinkDown && e.Message.Contains("fail to open", StringComparison.Ordinal)),
                "its link was killed");
        });
    }

    /// <summary>
    /// Every donor lies at once: each read from a daemon fails to open, slabs leave every daemon, the 3-slab rule
    /// fails each daemon in turn (its link killed from the read that found the third lie), the links come back, and
    /// slabs are placed on liars again. Every request is still answered, with the right bytes, from the disk.
    /// </summary>
    [Test]
    [CancelAfter(120_000)]
    public async Task When_every_donor_lies_every_request_is_answered_from_the_disk(CancellationToken ct)
    {
        await using var cluster = await SlabCluster.StartAsync(2, Size);
        await using var pool = await NbdClientPool.ConnectAsync(cluster.Uri, 2, new NbdClientOptions(), ct);
        var workload = new ReferenceWorkload(Size, 29, cache: false);
        await workload.FillAsync(pool, ct);
        await cluster.WaitSettledAsync(ct);

        foreach (var daemon in cluster.Daemons)
        {
            daemon.Faults.Lies.Active = DonorLie.FlipBit;
        }

        try
        {
            await workload.VerifyAllAsync(pool, ct);
            await workload.RunAsync(pool, Batches, ct, async _ => await workload.VerifyAllAsync(pool, ct));
            await workload.VerifyAllAsync(pool, ct);
        }
        finally
        {
            foreach (var entry in cluster.Log.Entries.Where(e => e.EventId.Id == EventIds.RequestFailed))
            {
                await TestContext.Out.WriteLineAsync($"{entry.Message}: {entry.Exception}");
            }
        }

        var stats = cluster.Device.GetStats();
        Assert.Multiple(() =>
        {
            Assert.That(workload.Mismatches, Is.Zero, "every byte read is the byte written");
            Assert.That(cluster.Daemons.Sum(d => d.Faults.Lies.Told), Is.GreaterThan(0), "the donors lied");
            Assert.That(stats.OpenFailures, Is.GreaterThan(0), "the lies were noticed");
            Assert.That(cluster.Log.Entries.Count(e => e.EventId.Id == EventIds.DaemonUntrusted), Is.GreaterThan(0),
                "the 3-slab rule failed a daemon");
            Assert.That(cluster.Log.Entries.Count(e => e.EventId.Id == EventIds.RequestFailed), Is.Zero, "no request failed unexpectedly");
        });
    }
}
