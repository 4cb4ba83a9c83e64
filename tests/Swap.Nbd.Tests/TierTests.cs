using System.Reflection;
using NUnit.Framework;

namespace Swap.Nbd.Tests;

/// <summary>Every fixture names exactly one tier, so that filtering by tier runs every test in exactly one tier.</summary>
[Category(Tier.Unit)]
[Parallelizable(ParallelScope.Self)]
public sealed class TierTests
{
    [Test]
    public void Every_fixture_has_exactly_one_tier_category()
    {
        var fixtures = typeof(Tier).Assembly.GetTypes()
            .Where(t => t.IsClass && !t.IsAbstract && !t.IsNested && IsFixture(t))
            .ToList();
        var wrong = fixtures
            .Select(t => (t.FullName, Tiers: t.GetCustomAttributes<CategoryAttribute>(inherit: true).Select(c => c.Name).Where(Tier.All.Contains).ToList()))
            .Where(f => f.Tiers.Count != 1)
            .Select(f => $"{f.FullName}: [{string.Join(", ", f.Tiers)}]")
            .ToList();

        Assert.That(fixtures, Has.Count.GreaterThan(50), "the reflection found the fixtures");
        Assert.That(wrong, Is.Empty, $"each fixture needs exactly one of [Category(Tier.X)]: {string.Join(", ", Tier.All)}");
    }

    [Test]
    public void Tests_carry_no_tier_of_their_own()
    {
        // A tier on a method would put that test in two tiers (it inherits its fixture's).
        var methods = typeof(Tier).Assembly.GetTypes()
            .SelectMany(t => t.GetMethods(BindingFlags.Instance | BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly))
            .Where(m => m.GetCustomAttributes<CategoryAttribute>().Any(c => Tier.All.Contains(c.Name)))
            .Select(m => $"{m.DeclaringType!.Name}.{m.Name}")
            .ToList();

        Assert.That(methods, Is.Empty);
    }

    private static bool IsFixture(Type type) =>
        type.GetCustomAttributes<TestFixtureAttribute>().Any()
        || type.GetMethods(BindingFlags.Instance | BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic)
            .Any(m => m.GetCustomAttributes().Any(a => a is TestAttribute or TestCaseAttribute or TestCaseSourceAttribute or TheoryAttribute));
}
