using Microsoft.Extensions.Time.Testing;
using NUnit.Framework;
using Swap.Slabs.Placement;

namespace Swap.Nbd.Tests.Placement;

/// <summary>The wait before a daemon whose link failed takes new slabs again, on a fake clock.</summary>
[Category(Tier.Unit)]
[Parallelizable(ParallelScope.Self)]
public sealed class DaemonProbationTests
{
    private static readonly TimeSpan First = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan Max = TimeSpan.FromSeconds(30);

    [Test]
    public void A_daemon_that_never_failed_takes_slabs_at_once()
    {
        var time = new FakeTimeProvider();
        var probation = new DaemonProbation(2, First, Max, time);
        Assert.That(probation.Joined(0), Is.EqualTo(TimeSpan.Zero));
        Assert.That(probation.MayTakeSlabs(0) && probation.MayTakeSlabs(1), Is.True);
    }

    [Test]
    public void A_flapping_daemon_waits_longer_after_each_failure_up_to_the_limit()
    {
        var time = new FakeTimeProvider();
        var probation = new DaemonProbation(2, First, Max, time);
        probation.Joined(0);
        var waits = new List<TimeSpan>();
        for (var flap = 0; flap < 6; flap++)
        {
            time.Advance(TimeSpan.FromSeconds(4)); // up 4 s, then the link fails: down 1 s in every 5 s
            probation.Lost(0);
            time.Advance(TimeSpan.FromSeconds(1));
            waits.Add(probation.Joined(0));
            Assert.That(probation.MayTakeSlabs(0), Is.False, "no new slabs right after it rejoined");
            Assert.That(probation.MayTakeSlabs(1), Is.True, "the other daemon is not held back");
        }

        Assert.That(waits, Is.EqualTo(new[] { 5, 10, 20, 30, 30, 30 }.Select(s => TimeSpan.FromSeconds(s))));
        Assert.That(probation.Failures(0), Is.EqualTo(6));
    }

    [Test]
    public void The_probation_ends_on_time_and_a_long_stay_starts_the_count_over()
    {
        var time = new FakeTimeProvider();
        var probation = new DaemonProbation(1, First, Max, time);
        probation.Joined(0);
        probation.Lost(0);
        Assert.That(probation.Joined(0), Is.EqualTo(First));
        time.Advance(First - TimeSpan.FromMilliseconds(1));
        Assert.That(probation.MayTakeSlabs(0), Is.False);
        time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.That(probation.MayTakeSlabs(0), Is.True, "up for the whole probation: slabs again");

        time.Advance(Max); // a long stay: the next failure counts as the first
        probation.Lost(0);
        Assert.That(probation.Joined(0), Is.EqualTo(First));
        Assert.That(probation.Failures(0), Is.EqualTo(1));
    }
}
