using NUnit.Framework;
using Swap.Slabs.Placement;

namespace Swap.Nbd.Tests.Placement;

[Category(Tier.Unit)]
[Parallelizable(ParallelScope.Self)]
public sealed class PowerOfChoicesTests
{
    [Test]
    public void Sample_picks_distinct_indices_in_range()
    {
        var random = new Random(1);
        Span<int> picked = stackalloc int[3];
        for (var count = 3; count < 50; count++)
        {
            for (var trial = 0; trial < 200; trial++)
            {
                PowerOfChoices.Sample(random, count, picked);
                Assert.That(picked[0], Is.InRange(0, count - 1));
                Assert.That(picked[1], Is.InRange(0, count - 1));
                Assert.That(picked[2], Is.InRange(0, count - 1));
                Assert.That(picked[0] != picked[1] && picked[1] != picked[2] && picked[0] != picked[2], Is.True, $"count {count}: {picked[0]} {picked[1]} {picked[2]}");
            }
        }
    }

    [Test]
    public void Sample_of_all_indices_is_a_permutation()
    {
        var picked = new int[10];
        PowerOfChoices.Sample(new Random(2), 10, picked);
        Assert.That(picked, Is.EquivalentTo(Enumerable.Range(0, 10)));
        PowerOfChoices.Sample(new Random(2), 10, Span<int>.Empty);
    }

    [Test]
    public void Sample_is_uniform_over_indices_and_positions()
    {
        // With a fixed seed this is deterministic; the bounds are about 5 standard deviations wide.
        const int Count = 10;
        const int Trials = 100_000;
        var random = new Random(3);
        var atPosition = new int[2, Count];
        Span<int> picked = stackalloc int[2];
        for (var trial = 0; trial < Trials; trial++)
        {
            PowerOfChoices.Sample(random, Count, picked);
            atPosition[0, picked[0]]++;
            atPosition[1, picked[1]]++;
        }

        for (var position = 0; position < 2; position++)
        {
            for (var index = 0; index < Count; index++)
            {
                Assert.That(atPosition[position, index], Is.InRange(9_500, 10_500), $"index {index} at position {position}");
            }
        }
    }

    [Test]
    public void Sample_refuses_more_picks_than_indices()
    {
        Assert.That(() => PowerOfChoices.Sample(new Random(4), 1, new int[2]), Throws.InstanceOf<ArgumentOutOfRangeException>());
        Assert.That(() => PowerOfChoices.Sample(new Random(4), -1, Span<int>.Empty), Throws.InstanceOf<ArgumentOutOfRangeException>());
    }

    [Test]
    public void Sample_and_Freest_do_not_allocate()
    {
        var random = new Random(5);
        var free = new long[100];
        Array.Fill(free, 3);
        Span<int> picked = stackalloc int[2];
        var sum = 0;
        PowerOfChoices.Sample(random, free.Length, picked);
        sum += PowerOfChoices.Freest(random, picked, free);
        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 10_000; i++)
        {
            PowerOfChoices.Sample(random, free.Length, picked);
            sum += PowerOfChoices.Freest(random, picked, free);
        }

        Assert.That(GC.GetAllocatedBytesForCurrentThread() - before, Is.Zero);
        Assert.That(sum, Is.GreaterThan(0));
    }

    [Test]
    public void Freest_takes_the_candidate_with_most_free_slabs()
    {
        long[] free = [5, 9, 0, 7];
        Assert.That(PowerOfChoices.Freest(new Random(6), [0, 1], free), Is.EqualTo(1));
        Assert.That(PowerOfChoices.Freest(new Random(6), [3, 0, 2], free), Is.EqualTo(3));
        Assert.That(PowerOfChoices.Freest(new Random(6), [2, 0], free), Is.EqualTo(0));
    }

    [Test]
    public void Freest_is_minus_one_when_every_candidate_is_full()
    {
        long[] free = [0, 0, 4];
        Assert.That(PowerOfChoices.Freest(new Random(7), [0, 1], free), Is.EqualTo(-1));
        Assert.That(PowerOfChoices.Freest(new Random(7), [], free), Is.EqualTo(-1));
    }

    [Test]
    public void Freest_breaks_ties_at_random()
    {
        long[] free = [4, 4, 4, 1];
        var random = new Random(8);
        var wins = new int[4];
        for (var trial = 0; trial < 30_000; trial++)
        {
            wins[PowerOfChoices.Freest(random, [3, 0, 1, 2], free)]++;
        }

        Assert.That(wins[3], Is.Zero);
        Assert.That(wins[..3], Has.All.InRange(9_500, 10_500), string.Join(' ', wins));
    }
}
