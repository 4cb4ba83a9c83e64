using NUnit.Framework;
using Swap.Common.Buffers;

namespace Swap.Nbd.Tests.Buffers;

/// <summary>
/// <see cref="PinnedBufferPool.Fixed"/>: with memory locked, the request path never makes a new buffer of a size the
/// pool holds; it takes a larger free one or waits for a return (new pages could wait on the swap it serves).
/// </summary>
[Category(Tier.Unit)]
public sealed class FixedBufferPoolTests
{
    [Test]
    public async Task A_request_waits_for_a_returned_buffer_instead_of_allocating()
    {
        var pool = new PinnedBufferPool { Fixed = true };
        pool.Preallocate(4096, 2);
        var first = pool.RentAsync(4096);
        var second = pool.RentAsync(4096);
        Assert.That(first.IsCompletedSuccessfully && second.IsCompletedSuccessfully, Is.True, "two buffers are held");
        var third = pool.RentAsync(4096);
        Assert.That(third.IsCompleted, Is.False, "no third buffer is made: the request waits");
        Assert.That(pool.Waits, Is.EqualTo(1));

        var returned = await first;
        pool.Return(returned);
        var got = await third.AsTask().WaitAsync(TimeSpan.FromSeconds(10));
        Assert.That(got, Is.SameAs(returned), "the waiting request took the buffer that came back");
        pool.Return(got);
        pool.Return(await second);
    }

    [Test]
    public async Task A_larger_free_buffer_serves_a_smaller_request_and_goes_back_to_its_own_class()
    {
        var pool = new PinnedBufferPool { Fixed = true };
        pool.Preallocate(4096, 1);
        pool.Preallocate(128 << 10, 1);
        var small = await pool.RentAsync(4096);
        var borrowed = await pool.RentAsync(4096);
        Assert.That(borrowed, Has.Length.EqualTo(128 << 10), "the 4 KiB class is empty: the 128 KiB buffer serves");
        pool.Return(borrowed);
        Assert.That(await pool.RentAsync(100 << 10), Is.SameAs(borrowed), "returned to the 128 KiB class");
        pool.Return(small);
    }

    [Test]
    public async Task A_request_larger_than_any_held_buffer_is_allocated_and_an_unfixed_pool_allocates()
    {
        var pool = new PinnedBufferPool { Fixed = true };
        pool.Preallocate(4096, 1);
        var large = pool.RentAsync(1 << 20);
        Assert.That(large.IsCompletedSuccessfully, Is.True, "nothing held could ever fit: made now");
        Assert.That((await large).Length, Is.EqualTo(1 << 20));

        var grows = new PinnedBufferPool();
        grows.Preallocate(4096, 1);
        _ = await grows.RentAsync(4096);
        var more = grows.RentAsync(4096);
        Assert.That(more.IsCompletedSuccessfully, Is.True, "without Fixed the pool makes another");
        Assert.That(grows.Waits, Is.Zero);
    }
}
