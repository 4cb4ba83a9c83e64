using System.Buffers.Binary;
using NUnit.Framework;
using Swap.MemTest;

namespace Swap.Nbd.Tests.MemTest;

[Category(Tier.Unit)]
[Parallelizable(ParallelScope.Self)]
public sealed class PagePatternTests
{
    [Test]
    public void SplitMix64_matches_the_reference_output()
    {
        // The first output of the reference splitmix64.c from state 0.
        ulong state = 0;
        Assert.That(SplitMix64.Next(ref state), Is.EqualTo(0xE220A8397B1DCDAFUL));
    }

    [Test]
    public void A_page_is_a_header_then_the_stream_of_seed_page_and_version()
    {
        var page = new byte[PagePattern.PageSize];
        PagePattern.Fill(page, seed: 7, index: 3, version: 2);

        // Golden words computed independently (Python) from the documented recipe, so a changed pattern is noticed:
        // runs with the same seed must mean the same bytes across versions of the tool.
        Assert.That(Word(page, 0), Is.EqualTo(PagePattern.Magic));
        Assert.That((Word(page, 1), Word(page, 2), Word(page, 3)), Is.EqualTo((7UL, 3UL, 2UL)));
        Assert.That(Word(page, 4), Is.EqualTo(0x28264AE426739A16UL));
        Assert.That(Word(page, 5), Is.EqualTo(0x66531358B5FDA2D9UL));
        Assert.That(PagePattern.Verify(page, 7, 3, 2).IsOk, Is.True);
    }

    [Test]
    public void Versions_pages_and_seeds_give_different_data()
    {
        var a = Filled(1, 10, 0);
        Assert.Multiple(() =>
        {
            Assert.That(a[32..], Is.Not.EqualTo(Filled(1, 10, 1)[32..]), "version");
            Assert.That(a[32..], Is.Not.EqualTo(Filled(1, 11, 0)[32..]), "page");
            Assert.That(a[32..], Is.Not.EqualTo(Filled(2, 10, 0)[32..]), "seed");
            Assert.That(a, Is.EqualTo(Filled(1, 10, 0)), "deterministic");
        });
    }

    [Test]
    public void A_stale_version_is_named_as_a_lost_write()
    {
        var check = PagePattern.Verify(Filled(5, 42, 3), 5, 42, 4);
        Assert.That(check.IsOk, Is.False);
        Assert.That(check.Describe(5, 42, 4), Does.Contain("holds version 3, expected 4").And.Contain("stale"));
    }

    [Test]
    public void Another_pages_data_is_named_by_its_page_number()
    {
        var check = PagePattern.Verify(Filled(5, 41, 0), 5, 42, 0);
        Assert.That(check.Describe(5, 42, 0), Does.Contain("holds page 41 version 0"));
    }

    [Test]
    public void A_zero_page_and_garbage_are_told_apart()
    {
        var zero = new byte[PagePattern.PageSize];
        Assert.That(PagePattern.Verify(zero, 5, 0, 0).Describe(5, 0, 0), Does.Contain("zeros"));
        var garbage = new byte[PagePattern.PageSize];
        new Random(3).NextBytes(garbage);
        Assert.That(PagePattern.Verify(garbage, 5, 0, 0).Describe(5, 0, 0), Does.Contain("no pattern"));
        Assert.That(PagePattern.Verify(Filled(9, 0, 0), 5, 0, 0).Describe(5, 0, 0), Does.Contain("another run (seed 9)"));
    }

    [Test]
    public void One_flipped_bit_in_the_data_is_found_at_its_byte()
    {
        foreach (var offset in new[] { 32, 1000, PagePattern.PageSize - 1 })
        {
            var page = Filled(5, 8, 1);
            page[offset] ^= 0x10;
            var check = PagePattern.Verify(page, 5, 8, 1);
            Assert.That(check.IsOk, Is.False, $"flip at {offset}");
            Assert.That(check.FirstBadByte, Is.EqualTo(offset / 8 * 8));
            Assert.That(check.Describe(5, 8, 1), Does.Contain($"data differs from byte {offset / 8 * 8}"));
        }
    }

    [Test]
    public void Wrong_page_sizes_are_refused()
    {
        Assert.Throws<ArgumentException>(() => PagePattern.Fill(new byte[4095], 1, 0, 0));
        Assert.Throws<ArgumentException>(() => PagePattern.Verify(new byte[8192], 1, 0, 0));
    }

    private static byte[] Filled(ulong seed, long index, uint version)
    {
        var page = new byte[PagePattern.PageSize];
        PagePattern.Fill(page, seed, index, version);
        return page;
    }

    private static ulong Word(byte[] page, int index) => BinaryPrimitives.ReadUInt64LittleEndian(page.AsSpan(index * 8));
}
