using NUnit.Framework;
using Swap.Common.Configuration;

namespace Swap.Nbd.Tests.Configuration;

[Category(Tier.Unit), Parallelizable(ParallelScope.Self)]
public sealed class CommandLineScannerTests
{
    private static bool? TakesValue(string name) => name switch
    {
        "--size" => true,
        "--progress" or "-h" => false,
        _ => null,
    };

    [Test]
    public void Values_follow_or_are_joined_by_equals_and_flags_are_true()
    {
        var tokens = CommandLineScanner.Scan(["--size", "1G", "--size=2G", "--progress", "--progress=false", "-h"], TakesValue);
        Assert.That(tokens.Select(t => (t.Kind, t.Switch, t.Value)), Is.EqualTo(new[]
        {
            (CommandLineTokenKind.Option, "--size", "1G"),
            (CommandLineTokenKind.Option, "--size", "2G"),
            (CommandLineTokenKind.Option, "--progress", "true"),
            (CommandLineTokenKind.Option, "--progress", "false"),
            (CommandLineTokenKind.Option, "-h", "true"),
        }));
    }

    [Test]
    public void Unknown_switches_take_their_value_along_and_strays_and_missing_values_are_named()
    {
        var tokens = CommandLineScanner.Scan(["--sise", "1G", "--what", "-h", "--x=1", "stray", "--size"], TakesValue);
        Assert.That(tokens.Select(t => (t.Kind, t.Argument, t.Value)), Is.EqualTo(new[]
        {
            (CommandLineTokenKind.Unknown, "--sise", "1G"),
            (CommandLineTokenKind.Unknown, "--what", null),
            (CommandLineTokenKind.Option, "-h", "true"),
            (CommandLineTokenKind.Unknown, "--x=1", null),
            (CommandLineTokenKind.Stray, "stray", null),
            (CommandLineTokenKind.MissingValue, "--size", null),
        }));
    }
}
