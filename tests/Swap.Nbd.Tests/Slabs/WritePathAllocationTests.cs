using NUnit.Framework;
using Swap.Nbd.Tests.Support;

namespace Swap.Nbd.Tests.Slabs;

/// <summary>
/// A swap-out (a WRITE without FUA, done on the connection's thread) allocates nothing once warm: on a host swapping
/// to this server every new page is an allocation that may wait in reclaim for the swap-out itself, and GC memory
/// is new pages (docs/operations.md, "Whole-machine swap").
/// </summary>
[Category(Tier.Integration)]
public sealed class WritePathAllocationTests
{
    private const int SlabSize = 1 << 20;

    [TestCase(true, 4096)]
    [TestCase(true, 128 << 10)]
    [TestCase(false, 4096)]
    [TestCase(false, 128 << 10)]
    [CancelAfter(60_000)]
    public async Task A_write_to_a_placed_slab_allocates_nothing_on_the_callers_thread(bool sealPages, int length, CancellationToken ct)
    {
        await using var cluster = await SlabCluster.StartAsync(1, 2 * SlabSize, SlabSize, sealPages: sealPages);
        var device = cluster.Device;
        var data = new byte[length];
        new Random(3).NextBytes(data);
        void Round(int count)
        {
            for (var i = 0; i < count; i++)
            {
                var offset = (long)i * length % SlabSize;
                if (!device.TryWrite(offset, data.AsSpan(0, length), fua: false))
                {
                    throw new AssertionException("a write without FUA is done in place");
                }
            }
        }

        Round(SlabSize / length);
        await cluster.WaitForAsync(s => s.ActiveSlabs == 1 && s.PagesRemote == SlabSize / 4096, "the slab placed and valid on its daemon", ct);
        Round(2000);
        // Every reply in: each write's tracker is back in the pool (1024 made at start; a write beyond that many in
        // flight makes another, which is a bound, not the per-write cost measured here).
        await cluster.WaitForAsync(s => s.PagesUnsent == 0 && s.PagesRemote == SlabSize / 4096, "the queue drained and every reply in", ct);

        // A System.Threading.Lock makes its wait event (56 bytes) the first time a thread has to wait for it, once per
        // lock: on a loaded machine that first wait can fall in a measured round (CI saw 280 bytes, five locks). A cost
        // per write shows in every round, so one round of the three without an allocation is the proof.
        const int Writes = 512;
        var rounds = new List<long>(3);
        do
        {
            var before = GC.GetAllocatedBytesForCurrentThread();
            Round(Writes);
            rounds.Add(GC.GetAllocatedBytesForCurrentThread() - before);
        }
        while (rounds[^1] != 0 && rounds.Count < 3);

        Assert.That(rounds[^1], Is.Zero, $"bytes allocated by rounds of {Writes} writes of {length} bytes (sealed: {sealPages}): {string.Join(", ", rounds)}");
    }
}
