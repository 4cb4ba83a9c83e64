using System.Globalization;
using Swap.Common.Configuration;
using Swap.Common.Units;

namespace Swap.MemTest;

/// <summary>What swapnbd-memtest does: how much memory, how many random touches, which seed, how many passes.</summary>
public sealed class MemTestOptions
{
    /// <summary>Every option, in the order of --help and of the README table.</summary>
    public static readonly IReadOnlyList<MemTestSwitch> Switches =
    [
        new("--size", "SIZE", "`1GiB`", "memory to allocate and test, a multiple of 4KiB (default 1GiB)", static (o, value) =>
        {
            if (!ByteSize.TryParse(value, out var size) || size <= 0 || size % PagePattern.PageSize != 0)
            {
                return $"--size: '{value}' is not a positive multiple of 4KiB (e.g. 1GiB, 256MiB)";
            }

            o.Size = size;
            return null;
        }),
        new("--touches", "N", "one per page", "random page touches per pass: verify, bump the version, rewrite (default: one per page)", static (o, value) =>
        {
            if (!long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var touches))
            {
                return $"--touches: '{value}' is not a count (0 or more)";
            }

            o.Touches = touches;
            return null;
        }),
        new("--seed", "S", "`1`", "pattern and touch order; the same seed repeats the same run (default 1)", static (o, value) =>
        {
            if (!ulong.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var seed))
            {
                return $"--seed: '{value}' is not an unsigned number";
            }

            o.Seed = seed;
            return null;
        }),
        new("--passes", "P", "`1`", "touch phase + full verify, P times (default 1)", static (o, value) =>
        {
            if (!int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var passes) || passes < 1)
            {
                return $"--passes: '{value}' is not a count of 1 or more";
            }

            o.Passes = passes;
            return null;
        }),
        new("--progress", null, "off", "one line per phase on stderr", static (o, value) =>
        {
            if (!bool.TryParse(value, out var progress))
            {
                return $"--progress: '{value}' is not true or false";
            }

            o.Progress = progress;
            return null;
        }),
    ];

    public static readonly string Usage = OptionUsage.Format(
        """
        swapnbd-memtest: fills anonymous memory with a verifiable pattern, touches random pages, verifies every page

        usage: swapnbd-memtest [--size SIZE] [--touches N] [--seed S] [--passes P] [--progress]
        """,
        Switches,
        column: 19,
        """
        Prints one summary line; exit 0 when every page verified, 1 on any mismatch (the first bad page is named),
        2 on a usage error, 3 when the memory cannot be mapped. Run it in a memory-limited cgroup to make it swap.
        """);

    public long Size { get; set; } = 1L << 30;

    /// <summary>Touches per pass; null means one per page.</summary>
    public long? Touches { get; set; }

    public ulong Seed { get; set; } = 1;

    public int Passes { get; set; } = 1;

    public bool Progress { get; set; }

    public bool Help { get; set; }

    public long TouchesPerPass => Touches ?? Size / PagePattern.PageSize;

    /// <summary>Parses the command line; every problem goes to <paramref name="errors"/>.</summary>
    public static MemTestOptions Parse(IReadOnlyList<string> args, List<string> errors)
    {
        var options = new MemTestOptions();
        var tokens = CommandLineScanner.Scan(args, name => name is "--help" or "-h" ? false : Find(name) is { } option ? option.Value is not null : null);
        foreach (var token in tokens)
        {
            switch (token.Kind)
            {
                case CommandLineTokenKind.Option when token.Switch is "--help" or "-h":
                    options.Help = true;
                    break;
                case CommandLineTokenKind.Option:
                    if (Find(token.Switch)!.Apply(options, token.Value!) is { } error)
                    {
                        errors.Add(error);
                    }

                    break;
                case CommandLineTokenKind.MissingValue:
                    errors.Add($"{token.Argument} needs a value");
                    break;
                default:
                    // swapnbd-memtest words these its own way (it has no keys): every unrecognised argument by itself.
                    errors.Add($"unknown argument '{token.Argument}'");
                    if (token.Value is not null)
                    {
                        errors.Add($"unknown argument '{token.Value}'");
                    }

                    break;
            }
        }

        return options;
    }

    private static MemTestSwitch? Find(string name)
    {
        foreach (var option in Switches)
        {
            if (option.Switch == name)
            {
                return option;
            }
        }

        return null;
    }
}
