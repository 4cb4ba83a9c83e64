using NUnit.Framework;
using Swap.Slabs.Mapping;

namespace Swap.Nbd.Tests.Slabs;

/// <summary>
/// <see cref="UnsentWrites"/>: an older write's reply (or a fill) makes pages valid on their daemon only where no newer
/// write of them still waits in a link's queue; otherwise a read sent then would overtake the newer write and get the
/// older copy from the daemon.
/// </summary>
[Category(Tier.Unit)]
public sealed class UnsentWritesTests
{
    [Test]
    public void A_reply_marks_valid_only_the_pages_with_no_newer_write_waiting()
    {
        // Slab 1 of a device with 64 pages a slab: its pages are 64..127 in the device-wide counts.
        var unsent = new UnsentWrites(256);
        var valid = new PageBitmap(64);
        Assert.That(unsent.TryAdd(64 + 3, 2), Is.True, "a newer write of pages 3-4 waits");
        Assert.That(unsent.TryAdd(64 + 10, 1), Is.True, "and one of page 10");

        unsent.MarkIdle(valid, 0, 16, slabFirstPage: 64);

        var set = Enumerable.Range(0, 16).Where(p => valid.Get(p)).ToArray();
        Assert.That(set, Is.EqualTo(new[] { 0, 1, 2, 5, 6, 7, 8, 9, 11, 12, 13, 14, 15 }));
        Assert.That(unsent.Count(), Is.EqualTo(3));
    }

    [Test]
    public void Once_the_newer_write_has_its_place_the_pages_may_be_marked()
    {
        var unsent = new UnsentWrites(64);
        var valid = new PageBitmap(64);
        Assert.That(unsent.TryAdd(5, 4), Is.True);
        Assert.That(unsent.TryAdd(7, 4), Is.True, "two waiting writes overlap on pages 7-8");
        unsent.Remove(5, 4);
        unsent.MarkIdle(valid, 5, 11, slabFirstPage: 0);
        Assert.That(Enumerable.Range(5, 6).Select(p => valid.Get(p)), Is.EqualTo(new[] { true, true, false, false, false, false }),
            "pages 7-10 still have the second write waiting");

        unsent.Remove(7, 4);
        unsent.MarkIdle(valid, 5, 11, slabFirstPage: 0);
        Assert.That(valid.All(5, 6), Is.True);
        Assert.That(unsent.Count(), Is.Zero);
    }

    [Test]
    public void A_page_with_255_writes_waiting_takes_no_more_and_the_range_counts_nothing()
    {
        var unsent = new UnsentWrites(8);
        for (var i = 0; i < 255; i++)
        {
            Assert.That(unsent.TryAdd(2, 1), Is.True);
        }

        Assert.That(unsent.TryAdd(0, 4), Is.False, "page 2 is full: the write stays on the disk only");
        Assert.That(unsent.Next(0, 8, waiting: true), Is.EqualTo(2), "pages 0, 1 and 3 were not counted either");
        Assert.That(unsent.Next(3, 8, waiting: true), Is.EqualTo(8));
    }
}
