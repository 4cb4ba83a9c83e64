using NUnit.Framework;
using Swap.Nbd.Client;
using Swap.Nbd.Tests.Support;
using Swap.Nbd.Tests.Faults;

namespace Swap.Nbd.Tests.Slabs;

/// <summary>
/// The whole slab path (NBD server → SwapDevice → daemons + backup file) under a random workload checked against a
/// reference model, while a daemon fails in each way the design names. Zero mismatches and zero errors at the
/// client every time: a failure costs speed, never data.
/// </summary>
[Category(Tier.Integration)]
public sealed class SlabIntegrityTests
{
    private const int Size = 16 << 20;
    private const int Batches = 24;
    private const int FaultAt = 8;

    [Test]
    [CancelAfter(120_000)]
    public async Task Healthy_daemons_hold_every_written_page(CancellationToken ct)
    {
        await using var cluster = await SlabCluster.StartAsync(3, Size);
        await using var pool = await NbdClientPool.ConnectAsync(cluster.Uri, 2, new NbdClientOptions(), ct);
        var workload = new ReferenceWorkload(Size, 11, cache: false);
        await workload.RunAsync(pool, Batches, ct);
        await cluster.WaitSettledAsync(ct);
        await workload.VerifyAllAsync(pool, ct);

        var stats = cluster.Device.GetStats();
        Assert.That(workload.Mismatches, Is.Zero);
        Assert.That(stats.PagesRemote, Is.GreaterThan(0));
        Assert.That(stats.Daemons.Count(d => d.Slabs > 0), Is.GreaterThan(1), stats.ToString());
    }

    [Test]
    [CancelAfter(180_000)]
    public async Task A_daemon_process_killed_with_SIGKILL_loses_nothing(CancellationToken ct)
    {
        await using var cluster = await SlabCluster.StartAsync(3, Size, processes: true);
        var victim = await RunWithFaultAsync(cluster, victim => cluster.Daemons[victim].KillAsync(), ct);

        var stats = cluster.Device.GetStats();
        Assert.That(stats.Daemons[victim].Up, Is.False);
        Assert.That(stats.Daemons[victim].Slabs, Is.Zero);
        Assert.That(cluster.Log.Entries.Any(e => e.EventId.Id == EventIds.SlabUnmapped), "slabs were unmapped");
    }

    [Test]
    [CancelAfter(120_000)]
    public async Task A_daemon_that_evicts_under_memory_pressure_loses_nothing(CancellationToken ct)
    {
        await using var cluster = await SlabCluster.StartAsync(3, Size);
        await RunWithFaultAsync(cluster, async victim =>
        {
            cluster.Daemons[victim].Memory.Available = 0;
            await cluster.WaitForAsync(s => s.Daemons[victim].Slabs == 0, "the victim evicted everything", ct);
        }, ct);

        Assert.That(cluster.Log.Entries.Any(e => e.EventId.Id == EventIds.SlabUnmapped && e.Message.Contains("evicted by the daemon", StringComparison.Ordinal)));
    }

    [Test]
    [CancelAfter(120_000)]
    public async Task A_daemon_that_stalls_past_the_timeout_loses_nothing(CancellationToken ct)
    {
        await using var cluster = await SlabCluster.StartAsync(3, Size);
        var victim = await RunWithFaultAsync(cluster, victim =>
        {
            cluster.Daemons[victim].Faults.Active = DonorFaults.Stall;
            return Task.CompletedTask;
        }, ct);

        Assert.That(cluster.Log.Entries.Any(e => e.EventId.Id == EventIds.LinkDown && e.Message.Contains("unanswered", StringComparison.Ordinal)), "the stall was detected by the timeout");
        Assert.That(cluster.Device.GetStats().Daemons[victim].Slabs, Is.Zero);
    }

    [Test]
    [CancelAfter(120_000)]
    public async Task A_daemon_that_answers_garbage_loses_nothing(CancellationToken ct)
    {
        await using var cluster = await SlabCluster.StartAsync(3, Size);
        var victim = await RunWithFaultAsync(cluster, victim =>
        {
            cluster.Daemons[victim].Faults.Active = DonorFaults.Garbage;
            return Task.CompletedTask;
        }, ct);

        Assert.That(cluster.Log.Entries.Any(e => e.EventId.Id == EventIds.LinkDown && e.Message.Contains("protocol violation", StringComparison.Ordinal)), "the garbage was refused");
        Assert.That(cluster.Device.GetStats().Daemons[victim].Slabs, Is.Zero);
    }

    [Test]
    [CancelAfter(180_000)]
    public async Task A_restarted_daemon_rejoins_and_nothing_is_lost(CancellationToken ct)
    {
        await using var cluster = await SlabCluster.StartAsync(2, Size, processes: true);
        var victim = await RunWithFaultAsync(cluster, async victim =>
        {
            await cluster.Daemons[victim].KillAsync();
            await cluster.WaitForAsync(s => !s.Daemons[victim].Up, "the loss noticed", ct);
            await cluster.Daemons[victim].StartAsync();
            await cluster.WaitForAsync(s => s.Daemons[victim].Up, "the restarted daemon rejoined", ct);
        }, ct);

        Assert.That(cluster.Device.GetStats().Daemons[victim].Up, Is.True);
    }

    [Test]
    [CancelAfter(120_000)]
    public async Task With_every_daemon_gone_the_device_runs_from_disk(CancellationToken ct)
    {
        await using var cluster = await SlabCluster.StartAsync(2, Size);
        await RunWithFaultAsync(cluster, async _ =>
        {
            foreach (var daemon in cluster.Daemons)
            {
                await daemon.KillAsync();
            }
        }, ct, settle: false);

        var stats = cluster.Device.GetStats();
        Assert.That(stats.MappedSlabs, Is.Zero);
        Assert.That(stats.PagesRemote, Is.Zero);
    }

    [Test]
    [CancelAfter(120_000)]
    public async Task After_a_daemon_is_lost_its_slabs_are_complete_again_on_the_others(CancellationToken ct)
    {
        await using var cluster = await SlabCluster.StartAsync(3, Size);
        await using var pool = await NbdClientPool.ConnectAsync(cluster.Uri, 2, new NbdClientOptions(), ct);
        var data = new byte[Size];
        new Random(3).NextBytes(data);
        for (var offset = 0; offset < Size; offset += 64 << 10)
        {
            await pool.WriteAsync(offset, data.AsMemory(offset, 64 << 10), fua: false, ct);
        }

        // Pages written while their slab was being filled may stay disk-only until written again (the write's answer
        // cannot tell whether the fill's older copy landed after it): once every slab is placed and filled, write the
        // same data again, so the loss and re-placement below start from a complete remote copy.
        await cluster.WaitForAsync(s => s.ActiveSlabs == s.Slabs, "every slab placed and filled", ct);
        for (var offset = 0; offset < Size; offset += 64 << 10)
        {
            await pool.WriteAsync(offset, data.AsMemory(offset, 64 << 10), fua: false, ct);
        }

        await cluster.WaitForAsync(s => s.PagesRemote == Size / 4096, "every page on a daemon", ct);
        var victim = await cluster.VictimAsync(ct);
        await cluster.Daemons[victim].KillAsync();
        await cluster.WaitForAsync(s => s.Daemons[victim].Slabs == 0 && s.PagesRemote == Size / 4096, "every page back on the other daemons", ct);

        var back = new byte[Size];
        for (var offset = 0; offset < Size; offset += 1 << 20)
        {
            await pool.ReadAsync(offset, back.AsMemory(offset, 1 << 20), ct);
        }

        Assert.That(back, Is.EqualTo(data));
    }

    /// <summary>
    /// Runs the workload; after batch <see cref="FaultAt"/> picks a daemon that holds slabs and hands it to
    /// <paramref name="fault"/>; then finishes, waits for re-placement and checks every byte. Returns the victim.
    /// </summary>
    private static async Task<int> RunWithFaultAsync(SlabCluster cluster, Func<int, Task> fault, CancellationToken ct, bool settle = true)
    {
        var victim = -1;
        await using var pool = await NbdClientPool.ConnectAsync(cluster.Uri, 2, new NbdClientOptions(), ct);
        var workload = new ReferenceWorkload(Size, 5, cache: false);
        await workload.RunAsync(pool, Batches, ct, async batch =>
        {
            if (batch == FaultAt)
            {
                victim = await cluster.VictimAsync(ct);
                await fault(victim);
            }
        });
        if (settle)
        {
            await cluster.WaitSettledAsync(ct);
        }

        await workload.VerifyAllAsync(pool, ct);
        Assert.That(workload.Mismatches, Is.Zero);
        return victim;
    }
}
