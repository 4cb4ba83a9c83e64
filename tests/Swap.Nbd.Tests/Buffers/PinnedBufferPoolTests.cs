using NUnit.Framework;
using Swap.Common.Buffers;

namespace Swap.Nbd.Tests.Buffers;

[Category(Tier.Unit)]
[Parallelizable(ParallelScope.Self)]
public sealed class PinnedBufferPoolTests
{
    [Test]
    public void Returned_buffers_are_reused_up_to_the_total_retention_across_classes()
    {
        var pool = new PinnedBufferPool(retainBytesPerClass: 1 << 20, retainBytesTotal: 1 << 20);
        var large = Enumerable.Range(0, 3).Select(_ => pool.Rent(512 << 10)).ToList();
        var small = Enumerable.Range(0, 4).Select(_ => pool.Rent(4096)).ToList();
        large.ForEach(pool.Return);
        Assert.That(pool.RetainedBytes, Is.EqualTo(1 << 20), "two of three 512 KiB buffers kept, the class is full");
        small.ForEach(pool.Return);
        Assert.That(pool.RetainedBytes, Is.EqualTo(1 << 20), "the total is full too: the small ones are dropped");

        var again = pool.Rent(300 << 10);
        Assert.That(again.Length, Is.EqualTo(512 << 10));
        Assert.That(large, Has.Some.SameAs(again), "a retained buffer comes back");
        Assert.That(pool.RetainedBytes, Is.EqualTo(512 << 10));
    }

    [Test]
    public void Preallocated_classes_hold_their_bytes_in_pinned_buffers()
    {
        var pool = new PinnedBufferPool();
        pool.PreallocateClasses(64 << 10, 256 << 10);
        Assert.That(pool.RetainedBytes, Is.EqualTo(5 * (256 << 10)), "4, 8, 16, 32 and 64 KiB classes");
        var buffer = pool.Rent(64 << 10);
        Assert.That(GC.GetGeneration(buffer), Is.EqualTo(GC.MaxGeneration), "pinned object heap");
        Assert.That(pool.RetainedBytes, Is.EqualTo((5 * (256 << 10)) - (64 << 10)));
    }
}
