using Microsoft.Extensions.Time.Testing;
using NUnit.Framework;
using Swap.Slabs.Prefetch;

namespace Swap.Nbd.Tests.Prefetch;

/// <summary><see cref="PrefetchBudget"/>: a token bucket of donor bytes, on a fake clock.</summary>
[Category(Tier.Unit)]
public sealed class PrefetchBudgetTests
{
    private const int Page = 4096;

    [Test]
    public void The_bucket_holds_a_twentieth_of_a_second_and_refills_at_the_rate()
    {
        var clock = new FakeTimeProvider();
        var budget = new PrefetchBudget(20L << 20, clock); // 20 MiB/s: 1 MiB a twentieth
        var taken = 0;
        while (budget.TryTake(Page))
        {
            taken++;
        }

        Assert.That(taken, Is.EqualTo((1 << 20) / Page), "the burst is 1/20 s of the rate");
        clock.Advance(TimeSpan.FromMilliseconds(10)); // 200 KiB at 20 MiB/s
        taken = 0;
        while (budget.TryTake(Page))
        {
            taken++;
        }

        Assert.That(taken, Is.EqualTo(51), "10 ms at 20 MiB/s is 204.8 KiB: 51 whole pages");
    }

    [Test]
    public void A_refund_gives_the_bytes_back_but_never_beyond_the_bucket()
    {
        var clock = new FakeTimeProvider();
        var budget = new PrefetchBudget(1L << 20, clock); // floor: 256 KiB
        var full = budget.Tokens;
        Assert.That(full, Is.EqualTo(256 << 10));

        Assert.That(budget.TryTake(Page), Is.True);
        budget.Refund(Page);
        Assert.That(budget.Tokens, Is.EqualTo(full), "a prefetch that did not start costs nothing");

        budget.Refund(Page);
        Assert.That(budget.Tokens, Is.EqualTo(full), "a refund never fills the bucket past its size");

        while (budget.TryTake(Page))
        {
        }

        Assert.That(budget.TryTake(Page), Is.False);
        budget.Refund(Page);
        Assert.That(budget.TryTake(Page), Is.True, "the refunded page can be taken again at once");
    }
}
