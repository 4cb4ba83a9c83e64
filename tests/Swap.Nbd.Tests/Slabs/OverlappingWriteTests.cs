using NUnit.Framework;
using Swap.Nbd.Tests.Support;

namespace Swap.Nbd.Tests.Slabs;

/// <summary>
/// Writes of the same pages on two threads at once (two NBD connections, or one connection whose large writes run on
/// the pool): whichever wins, the daemon must end up with what the disk has, sealed as the version the server
/// expects, or reads would differ by where they are served from and a donor would be blamed for pages it kept
/// faithfully (<see cref="Swap.Slabs.Mapping.WriteOrderLocks"/>).
/// </summary>
[Category(Tier.Integration)]
public sealed class OverlappingWriteTests
{
    private const int SlabSize = 1 << 20;
    private const int Slabs = 2;
    private const int PageSize = 4096;
    private const int Length = 128 << 10;

    [Test]
    [CancelAfter(120_000)]
    public async Task Overlapping_writes_on_two_threads_leave_the_daemon_holding_what_the_disk_holds(CancellationToken ct)
    {
        await using var cluster = await SlabCluster.StartAsync(2, Slabs * SlabSize, SlabSize);
        var device = cluster.Device;
        device.TryWrite(0, new byte[Slabs * SlabSize], fua: false);
        await cluster.WaitForAsync(s => s.ActiveSlabs == Slabs && s.PagesUnsent == 0, "both slabs placed and filled", ct);

        // Two writers, each 128 KiB at offsets a page apart over 256 KiB of each slab: nearly every write overlaps one
        // of the other thread's that runs at the same time. Every page of a write carries the writer and the round.
        using var start = new Barrier(2);
        var writers = Enumerable.Range(0, 2).Select(writer => Task.Factory.StartNew(() =>
        {
            var random = new Random(writer + 40);
            var data = new byte[Length];
            start.SignalAndWait(ct);
            for (var round = 0; round < 3000; round++)
            {
                var offset = ((long)random.Next(Slabs) * SlabSize) + ((long)random.Next(64) * PageSize);
                data.AsSpan().Fill((byte)((writer << 7) | (round & 0x7F)));
                device.TryWrite(offset, data, fua: false);
            }
        }, ct, TaskCreationOptions.LongRunning, TaskScheduler.Default)).ToArray();
        await Task.WhenAll(writers);
        await cluster.WaitForAsync(s => s.PagesUnsent == 0, "the write-behind queues drained", ct);

        var stats = device.GetStats();
        var fromDevice = new byte[Slabs * SlabSize];
        await device.ReadAsync(0, fromDevice, ct);
        var fromDisk = new byte[Slabs * SlabSize];
        cluster.Disk.Read(0, fromDisk);
        var differ = Enumerable.Range(0, fromDisk.Length / PageSize)
            .Count(page => !fromDevice.AsSpan(page * PageSize, PageSize).SequenceEqual(fromDisk.AsSpan(page * PageSize, PageSize)));
        Assert.Multiple(() =>
        {
            Assert.That(device.GetStats().OpenFailures, Is.Zero, "no page came back from a daemon sealed as another version");
            Assert.That(stats.PagesRemote, Is.GreaterThan(0), "pages were read from the daemons, not only the disk");
            Assert.That(differ, Is.Zero, "pages that read otherwise than the backup disk holds");
        });
    }
}
