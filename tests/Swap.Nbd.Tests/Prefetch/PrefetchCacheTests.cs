using NUnit.Framework;
using Swap.Slabs.Prefetch;

namespace Swap.Nbd.Tests.Prefetch;

/// <summary>
/// <see cref="PrefetchCache"/>: a prefetch that a write overtakes is thrown away when it lands, a loading slot is
/// never handed out again before it lands, and the bound holds (the oldest ready page makes room, counted as wasted).
/// </summary>
[Category(Tier.Unit)]
public sealed class PrefetchCacheTests
{
    private const int Page = PrefetchCache.PageSize;

    [Test]
    public void A_prefetch_that_lands_after_a_write_to_its_page_is_discarded()
    {
        var cache = new PrefetchCache(4);
        var slot = cache.TryReserve(10);
        Assert.That(slot, Is.GreaterThanOrEqualTo(0));
        // The old page is on its way into the slot when a write to page 10 is done.
        cache.SlotMemory(slot).Span.Fill(0xAA);
        Assert.That(cache.Invalidate(10, 11), Is.EqualTo(1));
        Assert.That(cache.Complete(slot, succeeded: true), Is.False, "the late answer is not kept");

        var destination = new byte[Page];
        Assert.That(cache.TryTake(10, destination), Is.False, "the old page is never served");
        Assert.That((cache.Count, cache.InFlight, cache.Discarded, cache.Hits), Is.EqualTo((0, 0, 1L, 0L)));

        // The page can be prefetched again (its new contents), and then it is served.
        var again = cache.TryReserve(10);
        cache.SlotMemory(again).Span.Fill(0xBB);
        Assert.That(cache.Complete(again, succeeded: true), Is.True);
        Assert.That(cache.TryTake(10, destination), Is.True);
        Assert.That(destination, Is.All.EqualTo(0xBB));
    }

    [Test]
    public void A_ready_page_a_write_reaches_is_gone_and_a_failed_read_keeps_nothing()
    {
        var cache = new PrefetchCache(4);
        var ready = cache.TryReserve(3);
        cache.Complete(ready, succeeded: true);
        var failed = cache.TryReserve(4);
        Assert.That(cache.Complete(failed, succeeded: false), Is.False);
        Assert.That(cache.Contains(4), Is.False);

        Assert.That(cache.Invalidate(0, 100), Is.EqualTo(1));
        Assert.That(cache.TryTake(3, new byte[Page]), Is.False);
        Assert.That((cache.Count, cache.Wasted, cache.Discarded), Is.EqualTo((0, 1L, 1L)));
    }

    [Test]
    public void A_read_takes_its_pages_only_when_all_are_ready()
    {
        var cache = new PrefetchCache(8);
        for (var page = 20L; page < 23; page++)
        {
            var slot = cache.TryReserve(page);
            cache.SlotMemory(slot).Span.Fill((byte)page);
            cache.Complete(slot, succeeded: true);
        }

        var loading = cache.TryReserve(23);
        var destination = new byte[4 * Page];
        Assert.That(cache.TryTake(20, destination), Is.False, "page 23 is still loading");
        Assert.That(cache.Count, Is.EqualTo(4), "nothing taken");

        cache.SlotMemory(loading).Span.Fill(23);
        cache.Complete(loading, succeeded: true);
        Assert.That(cache.TryTake(20, destination), Is.True);
        for (var i = 0; i < 4; i++)
        {
            Assert.That(destination.AsSpan(i * Page, Page).ToArray(), Is.All.EqualTo((byte)(20 + i)));
        }

        Assert.That((cache.Count, cache.Hits), Is.EqualTo((0, 4L)), "taken pages leave the cache");
    }

    [Test]
    public void The_bound_holds_a_loading_slot_is_never_reused_and_the_oldest_ready_page_makes_room()
    {
        var cache = new PrefetchCache(2);
        var a = cache.TryReserve(1);
        var b = cache.TryReserve(2);
        Assert.That(cache.TryReserve(3), Is.EqualTo(-1), "both slots loading: no room");
        Assert.That(cache.TryReserve(1), Is.EqualTo(-1), "in flight already");

        cache.Complete(a, succeeded: true);
        var c = cache.TryReserve(3);
        Assert.That(c, Is.EqualTo(a), "the ready page's slot, not the loading one's");
        Assert.That((cache.Contains(1), cache.Wasted, cache.Count), Is.EqualTo((false, 1L, 2)));

        // A long invalidation walks the slots: the loading ones turn stale and are freed when they land.
        Assert.That(cache.Invalidate(0, 1L << 40), Is.EqualTo(2));
        Assert.That(cache.Complete(b, succeeded: true), Is.False);
        Assert.That(cache.Complete(c, succeeded: true), Is.False);
        Assert.That((cache.Count, cache.InFlight), Is.EqualTo((0, 0)));
        Assert.That(cache.TryReserve(7), Is.GreaterThanOrEqualTo(0));
        Assert.That(cache.TryReserve(8), Is.GreaterThanOrEqualTo(0));
    }
}
