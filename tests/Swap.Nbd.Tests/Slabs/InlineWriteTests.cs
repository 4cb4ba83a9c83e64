using NUnit.Framework;
using Swap.Nbd.Tests.Support;
using Swap.Nbd.Tests.Faults;

namespace Swap.Nbd.Tests.Slabs;

/// <summary>
/// <see cref="Swap.Slabs.Mapping.SwapDevice.TryWrite"/>: a write without FUA is done on the caller's thread and
/// acknowledged once the disk has it and the daemon has been sent it. The server hands the payload straight from its
/// receive buffer and reuses that memory at once, so the device must be done with it when the call returns; the
/// daemon's answer only decides, later, whether reads may take the pages from it.
/// </summary>
[Category(Tier.Integration)]
public sealed class InlineWriteTests
{
    private const int SlabSize = 1 << 20;
    private const int Length = 128 << 10;

    [Test]
    [CancelAfter(60_000)]
    public async Task A_write_owns_nothing_of_the_callers_buffer(CancellationToken ct)
    {
        await using var cluster = await SlabCluster.StartAsync(2, 4 * SlabSize, SlabSize);
        var device = cluster.Device;
        var random = new Random(5);
        var expected = new byte[4 * SlabSize];
        var buffer = new byte[Length];

        // Twice over every slab: the first round finds the slabs unplaced (disk only), the second active on daemons.
        // One write in each round crosses a slab boundary, and 4K writes sit between the large ones.
        for (var round = 0; round < 2; round++)
        {
            for (var offset = round * 4096; offset + Length <= expected.Length; offset += Length)
            {
                var length = offset / Length % 3 == 0 ? 4096 : Length;
                random.NextBytes(buffer.AsSpan(0, length));
                buffer.AsSpan(0, length).CopyTo(expected.AsSpan(offset));
                Assert.That(device.TryWrite(offset, buffer.AsSpan(0, length), fua: false), Is.True, "a write without FUA is done in place");
                // What the server does with its receive buffer next: the next request lands in it.
                Array.Fill(buffer, (byte)0xEE);
            }

            await cluster.WaitSettledAsync(ct);
        }

        var back = new byte[expected.Length];
        await device.ReadAsync(0, back, ct);
        Assert.That(back, Is.EqualTo(expected), "read back through the device (daemons where valid)");
        await cluster.WaitForAsync(s => s.PagesRemote == s.PagesWritten, "every written page valid on a daemon", ct);

        var disk = new byte[expected.Length];
        cluster.Disk.Read(0, disk);
        Assert.That(disk, Is.EqualTo(expected), "the backup disk has the same bytes");
    }

    [Test]
    [CancelAfter(60_000)]
    public async Task A_write_is_acknowledged_before_its_daemon_answers_and_reads_from_the_disk_until_then(CancellationToken ct)
    {
        await using var cluster = await SlabCluster.StartAsync(1, 2 * SlabSize, SlabSize);
        var device = cluster.Device;
        var first = new byte[Length];
        Array.Fill(first, (byte)1);
        Assert.That(device.TryWrite(0, first, fua: false), Is.True);
        await cluster.WaitSettledAsync(ct);
        await cluster.WaitForAsync(s => s.PagesRemote == Length / 4096, "the first write valid on the daemon", ct);

        cluster.Daemons[0].Faults.Active = DonorFaults.Stall;
        var second = new byte[Length];
        Array.Fill(second, (byte)2);
        Assert.That(device.TryWrite(0, second, fua: false), Is.True, "acknowledged with the daemon stalled");
        var stats = device.GetStats();
        Assert.Multiple(() =>
        {
            Assert.That(stats.Daemons[0].Up, Is.True, "the daemon's link is still up: nothing waited for it to time out");
            Assert.That(stats.PagesRemote, Is.Zero, "the rewritten pages are not valid on the daemon before it answers");
        });

        var back = new byte[Length];
        await device.ReadAsync(0, back, ct);
        Assert.That(back, Is.EqualTo(second), "read from the disk while the daemon has not answered");

        // The stalled daemon times out, its link goes, and the slab comes back filled from the disk.
        cluster.Daemons[0].Faults.Active = DonorFaults.None;
        await cluster.WaitForAsync(s => s.PagesRemote == Length / 4096 && s.ActiveSlabs == 1, "the slab valid on the daemon again", ct);
        await device.ReadAsync(0, back, ct);
        Assert.That(back, Is.EqualTo(second), "read from the daemon once it has the pages again");
    }

    [Test]
    public async Task Writes_with_FUA_are_declined()
    {
        await using var cluster = await SlabCluster.StartAsync(1, 4 * SlabSize, SlabSize);
        Assert.That(cluster.Device.TryWrite(0, new byte[Length], fua: true), Is.False, "FUA waits for the disk's flush: asynchronous");
    }
}
