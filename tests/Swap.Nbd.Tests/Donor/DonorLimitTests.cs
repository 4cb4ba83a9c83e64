using NUnit.Framework;
using Swap.Daemon.Protocol;

namespace Swap.Nbd.Tests.Donor;

[Category(Tier.Integration)]
public sealed class DonorLimitTests
{
    private const ulong Slab = TestDonor.Slab;

    [Test, CancelAfter(20_000)]
    public async Task MaxMemory_counts_lent_slabs_at_full_size(CancellationToken ct)
    {
        await using var donor = new TestDonor(o => o.MaxMemory = 3 * (long)Slab);
        await using var client = await donor.HelloAsync(7, ct);
        Assert.That(await client.QueryFreeAsync(Slab, ct), Is.EqualTo((DaemonStatus.Ok, 3u)));
        Assert.That(await client.QueryFreeAsync(2 * Slab, ct), Is.EqualTo((DaemonStatus.Ok, 1u)), "counted in the size asked about");
        var big = await client.AllocOkAsync(2 * Slab, ct);
        Assert.That(await client.QueryFreeAsync(Slab, ct), Is.EqualTo((DaemonStatus.Ok, 1u)), "an unwritten slab still counts whole");
        await client.AllocOkAsync(Slab, ct);
        Assert.That(await client.QueryFreeAsync(Slab, ct), Is.EqualTo((DaemonStatus.Ok, 0u)));
        Assert.That((await client.AllocAsync(Slab, ct)).Status, Is.EqualTo(DaemonStatus.NoSpace));

        Assert.That(await client.FreeAsync(big, ct), Is.EqualTo(DaemonStatus.Ok));
        Assert.That(await client.QueryFreeAsync(Slab, ct), Is.EqualTo((DaemonStatus.Ok, 2u)));
    }

    [Test, CancelAfter(20_000)]
    public async Task Per_client_limit_leaves_room_for_other_clients(CancellationToken ct)
    {
        await using var donor = new TestDonor(o => o.MaxSlabsPerClient = 2);
        await using var a = await donor.HelloAsync(1, ct);
        await using var b = await donor.HelloAsync(2, ct);
        await a.AllocOkAsync(Slab, ct);
        await a.AllocOkAsync(Slab, ct);
        Assert.That(await a.QueryFreeAsync(Slab, ct), Is.EqualTo((DaemonStatus.Ok, 0u)));
        Assert.That((await a.AllocAsync(Slab, ct)).Status, Is.EqualTo(DaemonStatus.NoSpace));
        Assert.That(await b.QueryFreeAsync(Slab, ct), Is.EqualTo((DaemonStatus.Ok, 2u)));
        await b.AllocOkAsync(Slab, ct);
    }

    [Test, CancelAfter(20_000)]
    public async Task Headroom_and_uncommitted_lent_memory_bound_what_is_lent(CancellationToken ct)
    {
        await using var donor = new TestDonor();
        var headroom = donor.Options.Headroom;
        donor.Memory.Available = headroom + (2 * (long)Slab) + 4096;
        await using var client = await donor.HelloAsync(7, ct);
        Assert.That(await client.QueryFreeAsync(Slab, ct), Is.EqualTo((DaemonStatus.Ok, 2u)));

        var slab = await client.AllocOkAsync(Slab, ct);
        Assert.That(await client.QueryFreeAsync(Slab, ct), Is.EqualTo((DaemonStatus.Ok, 1u)), "the lent slab may be filled at any time");

        // Filling it moves memory from MemAvailable to committed: what can still be lent stays the same.
        Assert.That(await client.WriteAsync(slab, 0, DonorTestClient.Pattern((int)Slab, 5), ct), Is.EqualTo(DaemonStatus.Ok));
        donor.Memory.Available -= (long)Slab;
        Assert.That(await client.QueryFreeAsync(Slab, ct), Is.EqualTo((DaemonStatus.Ok, 1u)));

        donor.Memory.Available = headroom + (long)Slab - 1;
        Assert.That(await client.QueryFreeAsync(Slab, ct), Is.EqualTo((DaemonStatus.Ok, 0u)), "a drop counts at once, before the monitor averages it");
        Assert.That((await client.AllocAsync(Slab, ct)).Status, Is.EqualTo(DaemonStatus.NoSpace));
        var stats = await client.StatsAsync(ct);
        Assert.That(stats.FreeSlabs, Is.Zero);
        Assert.That(stats.SlabsMapped, Is.EqualTo(1));
    }
}
