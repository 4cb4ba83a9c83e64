namespace Swap.Common.Configuration;

/// <summary>
/// The one command-line grammar of swapnbd-server, swapnbd-daemon and swapnbd-memtest: "--switch VALUE",
/// "--switch=VALUE" and "--flag". It only splits; each program words its own errors from the tokens.
/// </summary>
public static class CommandLineScanner
{
    /// <param name="takesValue">For a switch: true if it takes a value, false for a flag, null if not declared.</param>
    public static List<CommandLineToken> Scan(IReadOnlyList<string> args, Func<string, bool?> takesValue)
    {
        var tokens = new List<CommandLineToken>(args.Count);
        for (var i = 0; i < args.Count; i++)
        {
            var arg = args[i];
            var declared = takesValue(arg);
            if (declared is null && !arg.StartsWith("--", StringComparison.Ordinal))
            {
                tokens.Add(new CommandLineToken(CommandLineTokenKind.Stray, arg, arg, null));
                continue;
            }

            var name = arg;
            string? value = null;
            var eq = arg.IndexOf('=', StringComparison.Ordinal);
            if (declared is null && eq > 0)
            {
                name = arg[..eq];
                value = arg[(eq + 1)..];
                declared = takesValue(name);
            }

            if (declared is null)
            {
                // "--sise 1G": the 1G is the unknown switch's value, not a second stray argument.
                string? skipped = null;
                if (value is null && i + 1 < args.Count && !args[i + 1].StartsWith("--", StringComparison.Ordinal) && takesValue(args[i + 1]) is null)
                {
                    skipped = args[++i];
                }

                tokens.Add(new CommandLineToken(CommandLineTokenKind.Unknown, arg, name, skipped));
                continue;
            }

            if (declared is false)
            {
                tokens.Add(new CommandLineToken(CommandLineTokenKind.Option, arg, name, value ?? "true"));
                continue;
            }

            if (value is null)
            {
                if (i + 1 >= args.Count)
                {
                    tokens.Add(new CommandLineToken(CommandLineTokenKind.MissingValue, arg, name, null));
                    continue;
                }

                value = args[++i];
            }

            tokens.Add(new CommandLineToken(CommandLineTokenKind.Option, arg, name, value));
        }

        return tokens;
    }
}
