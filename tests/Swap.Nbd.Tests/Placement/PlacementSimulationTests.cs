using System.Globalization;
using NUnit.Framework;
using Swap.Slabs.Placement;

namespace Swap.Nbd.Tests.Placement;

[Category(Tier.Unit)]
[Parallelizable(ParallelScope.Self)]
public sealed class PlacementSimulationTests
{
    [Test]
    public void Two_choices_balance_unequal_daemons_far_better_than_one()
    {
        // 1,000 daemons, half with 10 free slabs and half with 30; 5,000 slabs fill a quarter of the total.
        // One choice: every daemon expects 5 slabs, so the most loaded small daemons (~13 by balls-into-bins) are full.
        // Two choices by most free: slabs go to the big daemons until their free space falls to the small ones',
        // which 5,000 slabs never reach, so the busiest daemon sits near 10/30 of its capacity.
        var capacities = Enumerable.Range(0, 1000).Select(i => i % 2 == 0 ? 10L : 30L).ToArray();
        var one = PlacementSimulation.Run(capacities, 5000, choices: 1, seed: 42);
        var two = PlacementSimulation.Run(capacities, 5000, choices: 2, seed: 42);
        TestContext.Out.WriteLine(Describe(one));
        TestContext.Out.WriteLine(Describe(two));

        Assert.That(one.Unplaced, Is.Zero);
        Assert.That(two.Unplaced, Is.Zero);
        Assert.That(one.Load.Sum(), Is.EqualTo(5000));
        Assert.That(two.Load.Sum(), Is.EqualTo(5000));
        Assert.That(one.MaxUtilization, Is.EqualTo(1.0), "one choice fills some small daemons");
        Assert.That(Full(one), Is.GreaterThan(10));
        Assert.That(two.MaxUtilization, Is.LessThanOrEqualTo(0.6), "two choices keep every daemon well short of full");
        Assert.That(Full(two), Is.Zero);

        // Absolute load is the wrong yardstick here: two choices rightly put about twice the mean on the big daemons.
        static int Full(PlacementResult r) => r.Load.Where((load, i) => load == r.Capacities[i]).Count();
    }

    [Test]
    public void Two_choices_narrow_the_spread_on_equal_daemons()
    {
        // n = 1,000 daemons, n·ln n ≈ 6,900 slabs: one choice spreads loads over about ±3·sqrt(7) around 7,
        // two choices keep them within ln ln n / ln 2 + O(1) of the mean.
        var capacities = Enumerable.Repeat(100L, 1000).ToArray();
        var one = PlacementSimulation.Run(capacities, 6900, choices: 1, seed: 7);
        var two = PlacementSimulation.Run(capacities, 6900, choices: 2, seed: 7);
        TestContext.Out.WriteLine(Describe(one));
        TestContext.Out.WriteLine(Describe(two));

        Assert.That(two.Max - two.Min, Is.LessThanOrEqualTo((one.Max - one.Min) / 2));
        Assert.That(two.Max, Is.LessThanOrEqualTo(one.Max - 5));
        Assert.That(one.Unplaced + two.Unplaced, Is.Zero);
    }

    [Test]
    public void When_sampled_daemons_are_full_any_daemon_with_room_is_used_and_overflow_is_counted()
    {
        long[] capacities = [0, 0, 0, 0, 0, 0, 0, 0, 0, 3];
        var result = PlacementSimulation.Run(capacities, 5, choices: 2, seed: 1);
        Assert.That(result.Load, Is.EqualTo(new[] { 0, 0, 0, 0, 0, 0, 0, 0, 0, 3 }));
        Assert.That(result.Unplaced, Is.EqualTo(2));

        var full = PlacementSimulation.Run([4, 5, 6], 20, choices: 3, seed: 1);
        Assert.That(full.Load, Is.EqualTo(new[] { 4, 5, 6 }));
        Assert.That(full.Unplaced, Is.EqualTo(5));
        Assert.That(full.MinUtilization, Is.EqualTo(1.0));

        var none = PlacementSimulation.Run([], 3, choices: 2, seed: 1);
        Assert.That(none.Unplaced, Is.EqualTo(3));
        Assert.That(none.Max, Is.Zero);
    }

    [Test]
    public void More_choices_than_daemons_compares_them_all()
    {
        var result = PlacementSimulation.Run([10, 10, 10], 9, choices: 5, seed: 3);
        Assert.That(result.Load, Is.EqualTo(new[] { 3, 3, 3 }));
    }

    [Test]
    public void A_run_is_deterministic_for_a_seed()
    {
        var capacities = Enumerable.Range(1, 200).Select(i => (long)i).ToArray();
        var a = PlacementSimulation.Run(capacities, 5000, choices: 2, seed: 99);
        var b = PlacementSimulation.Run(capacities, 5000, choices: 2, seed: 99);
        var c = PlacementSimulation.Run(capacities, 5000, choices: 2, seed: 100);
        Assert.That(a.Load, Is.EqualTo(b.Load));
        Assert.That(a.Load, Is.Not.EqualTo(c.Load));
    }

    [Test]
    public void At_scale_one_thousand_daemons_ten_thousand_slabs()
    {
        // Capacities large enough that nobody fills: this is the balls-into-bins regime (mean load 10).
        var capacities = Enumerable.Repeat(1_000L, 1_000).ToArray();
        var results = new[] { 1, 2, 3 }.Select(d => PlacementSimulation.Run(capacities, 10_000, d, seed: 2024)).ToArray();

        TestContext.Out.WriteLine("1,000 daemons x 10,000 slabs (mean 10 a daemon), seed 2024");
        TestContext.Out.WriteLine(" d | max | min | max-min | unplaced");
        foreach (var r in results)
        {
            TestContext.Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $" {r.Choices} | {r.Max,3} | {r.Min,3} | {r.Max - r.Min,7} | {r.Unplaced,8}"));
        }

        Assert.That(results.Select(r => r.Unplaced), Is.All.Zero);
        Assert.That(results[1].Max, Is.LessThan(results[0].Max), "two choices beat one");
        // A third choice helps far less than the second (ln ln n / ln d): not worse, and within 2 slabs of d = 2.
        Assert.That(results[2].Max, Is.LessThanOrEqualTo(results[1].Max));
        Assert.That(results[1].Max, Is.LessThanOrEqualTo(results[2].Max + 2));
    }

    private static string Describe(PlacementResult r) => string.Create(
        CultureInfo.InvariantCulture,
        $"d={r.Choices}: max {r.Max}, min {r.Min}, max utilization {r.MaxUtilization:F2}, min utilization {r.MinUtilization:F2}, unplaced {r.Unplaced}");
}
