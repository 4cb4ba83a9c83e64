using NUnit.Framework;
using Swap.Nbd.Tests.Faults;
using Swap.Nbd.Tests.Support;
using Swap.Slabs.Remote;

namespace Swap.Nbd.Tests.Slabs;

/// <summary>
/// The write-behind queue (<see cref="WriteBehind"/>): a WRITE is done when the backup disk has it; its remote copy
/// waits in the link's ring for the link's own thread, so a daemon that stops reading (a full socket, or on a swapping
/// host a send that waits for reclaim) never holds up a swap-out. A full ring leaves pages on the disk only.
/// </summary>
[Category(Tier.Integration)]
public sealed class WriteBehindTests
{
    private const int SlabSize = 1 << 20;
    private const int Length = 128 << 10;

    [Test]
    [CancelAfter(120_000)]
    public async Task A_daemon_that_stops_reading_never_holds_up_a_write(CancellationToken ct)
    {
        // A long daemon timeout: a write that waited on the stalled daemon's socket would wait that long (the link's
        // send timeout is the request timeout); a small ring, so it fills long before the socket buffers would.
        await using var cluster = await SlabCluster.StartAsync(1, 2 * SlabSize, SlabSize, configureDevice: o => o with
        {
            Links = o.Links with { RequestTimeout = TimeSpan.FromSeconds(60), WriteBehindBytes = 1 << 20 },
        });
        var device = cluster.Device;
        var data = new byte[SlabSize];
        new Random(11).NextBytes(data);
        for (var offset = 0; offset < SlabSize; offset += Length)
        {
            Assert.That(device.TryWrite(offset, data.AsSpan(offset, Length), fua: false), Is.True);
        }

        await cluster.WaitForAsync(s => s.ActiveSlabs == 1 && s.PagesRemote == SlabSize / 4096, "the slab valid on its daemon", ct);

        cluster.Daemons[0].Faults.Active = DonorFaults.Stall;
        // 64 MiB over the same slab: far more than the ring and the socket buffers between server and daemon hold.
        var writes = Task.Run(() =>
        {
            var random = new Random(12);
            for (var round = 0; round < 64; round++)
            {
                random.NextBytes(data);
                for (var offset = 0; offset < SlabSize; offset += Length)
                {
                    if (!device.TryWrite(offset, data.AsSpan(offset, Length), fua: false))
                    {
                        throw new AssertionException("a write without FUA is done in place");
                    }
                }
            }
        }, ct);
        var finished = await Task.WhenAny(writes, Task.Delay(TimeSpan.FromSeconds(45), ct)) == writes;
        Assert.That(finished, Is.True, "64 MiB of writes finished with the daemon not reading (its timeout is 60 s)");
        await writes;

        var stats = device.GetStats();
        Assert.Multiple(() =>
        {
            Assert.That(stats.Daemons[0].Up, Is.True, "the daemon's link is still up: nothing waited for it to time out");
            Assert.That(stats.WritesQueueFull, Is.GreaterThan(0), "the ring filled: those writes stayed on the disk only");
            Assert.That(stats.PagesRemote, Is.Zero, "no page is valid on the daemon that stopped reading");
        });

        var back = new byte[SlabSize];
        await device.ReadAsync(0, back, ct);
        Assert.That(back, Is.EqualTo(data), "every page reads back the last write (from the disk)");

        cluster.Daemons[0].Faults.Active = DonorFaults.None;
        // The queue drains into the daemon; the pages of the writes that found it full stay disk-only until written
        // again: write the slab once more and every page is valid remotely. One write at a time, each sent before the
        // next: the whole slab sealed (8 × 32 pages at 4112 bytes) is more than the 1 MiB ring, so written back to
        // back on a busy machine the last write could find the ring full again and stay disk-only.
        await cluster.WaitForAsync(s => s.PagesUnsent == 0, "the queue drained once the daemon reads again", ct);
        for (var offset = 0; offset < SlabSize; offset += Length)
        {
            Assert.That(device.TryWrite(offset, data.AsSpan(offset, Length), fua: false), Is.True);
            await cluster.WaitForAsync(s => s.PagesUnsent == 0, "the write sent to the daemon", ct);
        }

        await cluster.WaitForAsync(s => s.PagesRemote == SlabSize / 4096, "every page valid on the daemon again", ct);
        await device.ReadAsync(0, back, ct);
        Assert.That(back, Is.EqualTo(data), "read back from the daemon");
    }
}
