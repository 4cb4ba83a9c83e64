using System.Globalization;
using Swap.Common.Units;

namespace Swap.MemTest;

/// <summary>What swapnbd-memtest does: how much memory, how many random touches, which seed, how many passes.</summary>
public sealed class MemTestOptions
{
    public const string Usage = """
        swapnbd-memtest: fills anonymous memory with a verifiable pattern, touches random pages, verifies every page

        usage: swapnbd-memtest [--size SIZE] [--touches N] [--seed S] [--passes P] [--progress]

          --size SIZE      memory to allocate and test, a multiple of 4KiB (default 1GiB)
          --touches N      random page touches per pass: verify, bump the version, rewrite (default: one per page)
          --seed S         pattern and touch order; the same seed repeats the same run (default 1)
          --passes P       touch phase + full verify, P times (default 1)
          --progress       one line per phase on stderr

        Prints one summary line; exit 0 when every page verified, 1 on any mismatch (the first bad page is named),
        2 on a usage error, 3 when the memory cannot be mapped. Run it in a memory-limited cgroup to make it swap.
        """;

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
        for (var i = 0; i < args.Count; i++)
        {
            var arg = args[i];
            switch (arg)
            {
                case "--help" or "-h":
                    options.Help = true;
                    continue;
                case "--progress":
                    options.Progress = true;
                    continue;
                case "--size" or "--touches" or "--seed" or "--passes":
                    break;
                default:
                    errors.Add($"unknown argument '{arg}'");
                    continue;
            }

            if (i + 1 >= args.Count)
            {
                errors.Add($"{arg} needs a value");
                continue;
            }

            var value = args[++i];
            switch (arg)
            {
                case "--size":
                    if (!ByteSize.TryParse(value, out var size) || size <= 0 || size % PagePattern.PageSize != 0)
                    {
                        errors.Add($"--size: '{value}' is not a positive multiple of 4KiB (e.g. 1GiB, 256MiB)");
                    }
                    else
                    {
                        options.Size = size;
                    }

                    break;
                case "--touches":
                    if (!long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var touches))
                    {
                        errors.Add($"--touches: '{value}' is not a count (0 or more)");
                    }
                    else
                    {
                        options.Touches = touches;
                    }

                    break;
                case "--seed":
                    if (!ulong.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var seed))
                    {
                        errors.Add($"--seed: '{value}' is not an unsigned number");
                    }
                    else
                    {
                        options.Seed = seed;
                    }

                    break;
                default:
                    if (!int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var passes) || passes < 1)
                    {
                        errors.Add($"--passes: '{value}' is not a count of 1 or more");
                    }
                    else
                    {
                        options.Passes = passes;
                    }

                    break;
            }
        }

        return options;
    }
}
