using NUnit.Framework;
using Swap.Nbd.Tests.Support;

namespace Swap.Nbd.Tests.Slabs;

/// <summary>
/// <see cref="Swap.Slabs.Mapping.SwapDevice.TryStartWrite"/>: the server hands a WRITE payload straight from its receive
/// buffer and reuses that memory at once, so the device must be done with it when the call returns.
/// </summary>
[Category("Slabs")]
public sealed class StartWriteTests
{
    private const int SlabSize = 1 << 20;
    private const int Length = 128 << 10;

    [Test]
    [CancelAfter(60_000)]
    public async Task A_started_write_owns_nothing_of_the_callers_buffer(CancellationToken ct)
    {
        await using var cluster = await SlabCluster.StartAsync(2, 4 * SlabSize, SlabSize);
        var device = cluster.Device;
        var random = new Random(5);
        var expected = new byte[4 * SlabSize];
        var buffer = new byte[Length];

        // Twice over every slab: the first round finds the slabs unplaced (disk only), the second active on daemons.
        for (var round = 0; round < 2; round++)
        {
            var pending = new List<ValueTask>();
            for (var offset = 0; offset < expected.Length; offset += Length)
            {
                random.NextBytes(buffer);
                buffer.CopyTo(expected, offset);
                Assert.That(device.TryStartWrite(offset, buffer, fua: false, out var completion), Is.True, "a 128K write within a slab starts in place");
                pending.Add(completion);
                // What the server does with its receive buffer next: the next request lands in it.
                Array.Fill(buffer, (byte)0xEE);
            }

            foreach (var completion in pending)
            {
                await completion;
            }

            await cluster.WaitSettledAsync(ct);
        }

        var back = new byte[expected.Length];
        await device.ReadAsync(0, back, ct);
        Assert.That(back, Is.EqualTo(expected), "read back through the device (daemons where valid)");
        Assert.That(device.GetStats().PagesRemote, Is.EqualTo(expected.Length / 4096), "every page valid on a daemon");

        var disk = new byte[expected.Length];
        cluster.Disk.Read(0, disk);
        Assert.That(disk, Is.EqualTo(expected), "the backup disk has the same bytes");
    }

    [Test]
    public async Task Writes_that_are_small_cross_a_slab_or_carry_FUA_are_declined()
    {
        await using var cluster = await SlabCluster.StartAsync(1, 4 * SlabSize, SlabSize);
        var buffer = new byte[Length];
        Assert.Multiple(() =>
        {
            Assert.That(cluster.Device.TryStartWrite(0, buffer.AsSpan(0, 4096), fua: false, out _), Is.False, "4K: copied, disk write on the pool under a queue");
            Assert.That(cluster.Device.TryStartWrite(SlabSize - 4096, buffer, fua: false, out _), Is.False, "crosses a slab");
            Assert.That(cluster.Device.TryStartWrite(0, buffer, fua: true, out _), Is.False, "FUA");
        });
    }
}
