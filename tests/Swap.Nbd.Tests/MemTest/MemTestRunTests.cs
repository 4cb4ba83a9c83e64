using NUnit.Framework;
using Swap.MemTest;

namespace Swap.Nbd.Tests.MemTest;

[Category(Tier.Unit)]
[Parallelizable(ParallelScope.Self)]
public sealed class MemTestRunTests
{
    [Test]
    public void A_run_with_nothing_in_the_way_verifies_every_page()
    {
        using var run = new MemTestRun(4L << 20, seed: 11);
        run.Fill();
        run.Touch(5000);
        run.VerifyAll();
        Assert.That((run.Pages, run.Touches, run.Mismatches, run.FirstMismatch), Is.EqualTo((1024L, 5000L, 0L, (string?)null)));
        Assert.That(run.LongestPage, Is.GreaterThan(TimeSpan.Zero).And.LessThan(TimeSpan.FromSeconds(10)), "the longest wait on one page is measured");
    }

    [Test]
    public void A_page_corrupted_behind_the_runs_back_is_named()
    {
        using var run = new MemTestRun(1L << 20, seed: 11);
        run.Fill();
        run.Memory.Page(77)[100] ^= 1;
        run.Memory.Page(200).Clear();
        run.VerifyAll();
        Assert.That(run.Mismatches, Is.EqualTo(2));
        Assert.That(run.FirstMismatch, Does.StartWith("page 77 (offset 0x4d000) header right, data differs from byte 96"));
    }

    [Test]
    public void A_lost_write_is_found_on_the_next_touch_or_the_full_verify()
    {
        using var run = new MemTestRun(64 << 10, seed: 3);
        run.Fill();
        var before = run.Memory.Page(5).ToArray();
        run.Touch(200); // 16 pages, 200 touches: page 5 is rewritten several times
        before.CopyTo(run.Memory.Page(5)); // as if the last writes never reached the swap device
        run.Touch(200);
        run.VerifyAll();
        Assert.That(run.Mismatches, Is.GreaterThanOrEqualTo(1));
        Assert.That(run.FirstMismatch, Does.StartWith("page 5 ").And.Contain("stale"));
    }

    [Test]
    public void The_same_seed_touches_the_same_pages()
    {
        using var a = new MemTestRun(256 << 10, seed: 9);
        using var b = new MemTestRun(256 << 10, seed: 9);
        using var c = new MemTestRun(256 << 10, seed: 10);
        foreach (var run in new[] { a, b, c })
        {
            run.Fill();
            run.Touch(300);
        }

        var versionsDiffer = Enumerable.Range(0, 64).Any(p => a.Memory.Page(p)[24] != c.Memory.Page(p)[24]);
        Assert.That(Pages(b), Is.EqualTo(Pages(a)), "seed 9 twice");
        Assert.That(versionsDiffer, Is.True, "seed 10 touched other pages");
    }

    [Test]
    public void Sizes_that_are_not_whole_pages_are_refused() =>
        Assert.Throws<ArgumentOutOfRangeException>(() => new MemTestRun(4097, 1).Dispose());

    /// <summary>The first 64 pages, one array each, so a difference shows which page and byte.</summary>
    private static byte[][] Pages(MemTestRun run) => Enumerable.Range(0, 64).Select(p => run.Memory.Page(p).ToArray()).ToArray();
}
