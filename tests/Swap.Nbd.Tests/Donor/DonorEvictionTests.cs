using NUnit.Framework;
using Swap.Daemon.Protocol;

namespace Swap.Nbd.Tests.Donor;

[Category(Tier.Integration)]
public sealed class DonorEvictionTests
{
    private const ulong Slab = TestDonor.Slab;

    [Test, CancelAfter(20_000)]
    public async Task Pressure_evicts_the_least_recently_active_sampled_slab_and_notifies_its_owner(CancellationToken ct)
    {
        // E = 1, E' = 2 and three slabs: all three are sampled, so the choice is deterministic.
        await using var donor = new TestDonor(o => (o.EvictBatch, o.EvictExtraSamples) = (1, 2));
        await using var client = await donor.HelloAsync(7, ct);
        var slabs = new SlabGrant[3];
        for (var i = 0; i < slabs.Length; i++)
        {
            slabs[i] = await client.AllocOkAsync(Slab, ct);
            Assert.That(await client.WriteAsync(slabs[i], 0, DonorTestClient.Pattern(64 * 1024, i), ct), Is.EqualTo(DaemonStatus.Ok));
            donor.Time.Advance(TimeSpan.FromSeconds(1));
        }

        // Slab 0 was written first but read last: slab 1 is now the least recently active.
        Assert.That((await client.ReadAsync(slabs[0], 0, 4096, ct)).Status, Is.EqualTo(DaemonStatus.Ok));
        donor.Time.Advance(TimeSpan.FromSeconds(1));
        var committed = donor.Daemon.BytesCommitted;

        donor.Memory.Available = donor.Options.Headroom - 1;
        donor.Time.Advance(donor.Options.MonitorInterval);

        var notice = await client.NextEvictionAsync(ct);
        Assert.That(notice, Is.EqualTo(new SlabRange(slabs[1].SlabId, slabs[1].Epoch, 0, 0)));
        Assert.That(donor.Daemon.SlabCount, Is.EqualTo(2), "one slab frees enough");
        Assert.That(donor.Daemon.BytesCommitted, Is.EqualTo(committed - (64 * 1024)), "its memory is returned");
        Assert.That((await client.ReadAsync(slabs[1], 0, 4096, ct)).Status, Is.EqualTo(DaemonStatus.Stale));
        Assert.That(await client.WriteAsync(slabs[1], 0, new byte[4096], ct), Is.EqualTo(DaemonStatus.Stale));
        Assert.That((await client.ReadAsync(slabs[0], 0, 4096, ct)).Status, Is.EqualTo(DaemonStatus.Ok));
        Assert.That((await client.ReadAsync(slabs[2], 0, 4096, ct)).Status, Is.EqualTo(DaemonStatus.Ok));
    }

    [Test, CancelAfter(20_000)]
    public async Task Eviction_goes_on_until_the_shortfall_is_covered_or_no_slab_is_left(CancellationToken ct)
    {
        await using var donor = new TestDonor();
        await using var client = await donor.HelloAsync(7, ct);
        for (var i = 0; i < 4; i++)
        {
            var slab = await client.AllocOkAsync(Slab, ct);
            Assert.That(await client.WriteAsync(slab, 0, new byte[4096], ct), Is.EqualTo(DaemonStatus.Ok));
        }

        donor.Memory.Available = 0;
        donor.Time.Advance(donor.Options.MonitorInterval);
        Assert.That(donor.Daemon.SlabCount, Is.Zero);
        Assert.That(donor.Daemon.BytesCommitted, Is.Zero);
        for (var i = 0; i < 4; i++)
        {
            await client.NextEvictionAsync(ct);
        }
    }

    [Test, CancelAfter(20_000)]
    public async Task Smoothing_ignores_a_short_dip(CancellationToken ct)
    {
        await using var donor = new TestDonor(o => o.MemAvailableSmoothing = 0.25);
        await using var client = await donor.HelloAsync(7, ct);
        await client.AllocOkAsync(Slab, ct);
        var normal = donor.Options.Headroom * 4;
        donor.Memory.Available = normal;
        for (var i = 0; i < 20; i++)
        {
            donor.Time.Advance(donor.Options.MonitorInterval);
        }

        donor.Memory.Available = donor.Options.Headroom / 2; // one reading under the headroom
        donor.Time.Advance(donor.Options.MonitorInterval);
        Assert.That(donor.Daemon.SlabCount, Is.EqualTo(1));
        Assert.That(donor.Daemon.SmoothedMemAvailable, Is.GreaterThan(donor.Options.Headroom));
    }

    [Test, CancelAfter(20_000)]
    public async Task A_client_reconnecting_within_the_grace_period_gets_its_slabs_back(CancellationToken ct)
    {
        await using var donor = new TestDonor(o => o.GracePeriod = TimeSpan.FromSeconds(30));
        var data = DonorTestClient.Pattern(16 * 1024, 9);
        SlabGrant slab;
        await using (var first = await donor.HelloAsync(7, ct))
        {
            slab = await first.AllocOkAsync(Slab, ct);
            Assert.That(await first.WriteAsync(slab, 8192, data, ct), Is.EqualTo(DaemonStatus.Ok));
        }

        await TestDonor.WaitForAsync(() => donor.Daemon.ConnectionCount == 0, ct);
        donor.Time.Advance(TimeSpan.FromSeconds(29));
        Assert.That(donor.Daemon.SlabCount, Is.EqualTo(1));
        await using (var again = await donor.HelloAsync(7, ct))
        {
            var read = await again.ReadAsync(slab, 8192, (uint)data.Length, ct);
            Assert.That(read.Status, Is.EqualTo(DaemonStatus.Ok));
            Assert.That(read.Data, Is.EqualTo(data));
            donor.Time.Advance(TimeSpan.FromSeconds(60));
            Assert.That(donor.Daemon.SlabCount, Is.EqualTo(1), "the old grace timer is gone");
        }

        await TestDonor.WaitForAsync(() => donor.Daemon.ConnectionCount == 0, ct);
        donor.Time.Advance(TimeSpan.FromSeconds(31));
        Assert.That(donor.Daemon.SlabCount, Is.Zero, "after the grace period the slabs are freed");
        Assert.That(donor.Daemon.ClientCount, Is.Zero);
        Assert.That(donor.Daemon.BytesCommitted, Is.Zero);
        await using var late = await donor.HelloAsync(7, ct);
        Assert.That((await late.ReadAsync(slab, 8192, 4096, ct)).Status, Is.EqualTo(DaemonStatus.Stale));
    }

    [Test, CancelAfter(20_000)]
    public async Task A_hello_that_releases_frees_the_clients_earlier_slabs_at_once(CancellationToken ct)
    {
        await using var donor = new TestDonor(o => o.GracePeriod = TimeSpan.FromSeconds(30));
        SlabGrant old;
        await using (var first = await donor.HelloAsync(7, ct))
        {
            old = await first.AllocOkAsync(Slab, ct);
            Assert.That(await first.WriteAsync(old, 0, DonorTestClient.Pattern(8192, 3), ct), Is.EqualTo(DaemonStatus.Ok));
        }

        await using var other = await donor.HelloAsync(8, ct);
        var kept = await other.AllocOkAsync(Slab, ct);
        await TestDonor.WaitForAsync(() => donor.Daemon.ConnectionCount == 1, ct);
        Assert.That(donor.Daemon.SlabCount, Is.EqualTo(2), "within the grace period");

        // The restarted server: same id, starting afresh.
        await using var restarted = await donor.ConnectAsync(ct);
        Assert.That(await restarted.HelloAsync(7, ct, flags: DaemonHelloFlags.ReleaseSlabs), Is.EqualTo(DaemonStatus.Ok));
        Assert.That(donor.Daemon.SlabCount, Is.EqualTo(1), "client 7's slab is freed, client 8's kept");
        Assert.That((await restarted.ReadAsync(old, 0, 4096, ct)).Status, Is.EqualTo(DaemonStatus.Stale));
        Assert.That((await other.ReadAsync(kept, 0, 4096, ct)).Status, Is.EqualTo(DaemonStatus.Ok));
        var again = await restarted.AllocOkAsync(Slab, ct);
        Assert.That(again.Epoch, Is.Not.EqualTo(old.Epoch), "a new slab, never the old epoch");
    }

    [Test, CancelAfter(20_000)]
    public async Task A_hello_with_unknown_flags_is_invalid(CancellationToken ct)
    {
        await using var donor = new TestDonor();
        await using var client = await donor.ConnectAsync(ct);
        Assert.That(await client.HelloAsync(7, ct, flags: (DaemonHelloFlags)0x8000), Is.EqualTo(DaemonStatus.Invalid));
        Assert.That(await client.HelloAsync(7, ct), Is.EqualTo(DaemonStatus.Ok), "the connection goes on");
    }

    [Test, CancelAfter(20_000)]
    public async Task A_client_with_another_live_connection_keeps_its_slabs(CancellationToken ct)
    {
        await using var donor = new TestDonor(o => o.GracePeriod = TimeSpan.Zero);
        await using var stays = await donor.HelloAsync(7, ct);
        var slab = await stays.AllocOkAsync(Slab, ct);
        await using (var leaves = await donor.HelloAsync(7, ct))
        {
            Assert.That((await leaves.ReadAsync(slab, 0, 4096, ct)).Status, Is.EqualTo(DaemonStatus.Ok), "connections of one client share its slabs");
        }

        await TestDonor.WaitForAsync(() => donor.Daemon.ConnectionCount == 1, ct);
        Assert.That(donor.Daemon.SlabCount, Is.EqualTo(1));
    }

    [Test, CancelAfter(20_000)]
    public async Task Eviction_notice_goes_to_a_live_connection_of_the_owner(CancellationToken ct)
    {
        await using var donor = new TestDonor();
        await using var owner = await donor.HelloAsync(1, ct);
        await using var other = await donor.HelloAsync(2, ct);
        var slab = await owner.AllocOkAsync(Slab, ct);
        donor.Memory.Available = 0;
        donor.Time.Advance(donor.Options.MonitorInterval);
        Assert.That(await owner.NextEvictionAsync(ct), Is.EqualTo(new SlabRange(slab.SlabId, slab.Epoch, 0, 0)));
        Assert.That((await other.StatsAsync(ct)).SlabsMapped, Is.Zero);
        Assert.That(other.Evictions, Is.Empty);
    }

    [Test, CancelAfter(60_000)]
    public async Task Evicting_slabs_under_requests_in_flight_is_safe(CancellationToken ct)
    {
        await using var donor = new TestDonor(o => o.MaxMemory = 256 * (long)Slab);
        await using var control = await donor.HelloAsync(7, ct);
        await using var busy = await donor.HelloAsync(7, ct);
        var grants = new List<SlabGrant>();
        for (var i = 0; i < 8; i++)
        {
            grants.Add(await control.AllocOkAsync(4 * Slab, ct));
        }

        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var statuses = new HashSet<DaemonStatus>();
        var data = DonorTestClient.Pattern(1 << 20, 1);
        var hammer = Task.Run(async () =>
        {
            var random = new Random(2);
            while (!stop.IsCancellationRequested)
            {
                SlabGrant grant;
                lock (grants)
                {
                    grant = grants[random.Next(grants.Count)];
                }

                var offset = (ulong)random.Next(0, 3) << 20;
                statuses.Add(await busy.WriteAsync(grant, offset, data, ct));
                statuses.Add((await busy.ReadAsync(grant, offset, 1 << 20, ct)).Status);
            }
        }, ct);

        for (var round = 0; round < 40; round++)
        {
            donor.Memory.Available = donor.Options.Headroom - 1;
            donor.Time.Advance(donor.Options.MonitorInterval);
            donor.Memory.Available = 64L << 30;
            donor.Time.Advance(donor.Options.MonitorInterval);
            var fresh = await control.AllocOkAsync(4 * Slab, ct);
            lock (grants)
            {
                grants.Add(fresh);
            }

            await Task.Yield();
        }

        await stop.CancelAsync();
        await hammer;
        Assert.That(statuses, Is.SubsetOf(new[] { DaemonStatus.Ok, DaemonStatus.Stale }));
        Assert.That(donor.Daemon.SlabCount, Is.GreaterThan(0));
        Assert.That((await busy.StatsAsync(ct)).SlabsMapped, Is.EqualTo((uint)donor.Daemon.SlabCount));
    }
}
