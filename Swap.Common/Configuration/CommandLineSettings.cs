namespace Swap.Common.Configuration;

/// <summary>
/// Turns "--some-option VALUE" / "--some-option=VALUE" arguments into configuration keys, refusing anything it
/// does not know with an error that names the argument.
/// </summary>
public static class CommandLineSettings
{
    /// <param name="switches">Maps "--listen" style names to configuration keys ("Listen").</param>
    /// <param name="flags">Switches that take no value and set their key to "true".</param>
    public static Dictionary<string, string?> Parse(
        IReadOnlyList<string> args,
        IReadOnlyDictionary<string, string> switches,
        IReadOnlySet<string> flags,
        List<string> errors)
    {
        var values = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
        for (var i = 0; i < args.Count; i++)
        {
            var arg = args[i];
            if (!arg.StartsWith("--", StringComparison.Ordinal))
            {
                errors.Add($"argument '{arg}': expected an option such as --listen HOST:PORT (see --help)");
                continue;
            }

            var name = arg;
            string? value = null;
            var eq = arg.IndexOf('=', StringComparison.Ordinal);
            if (eq > 0)
            {
                name = arg[..eq];
                value = arg[(eq + 1)..];
            }

            if (!switches.TryGetValue(name, out var key))
            {
                errors.Add($"option '{name}' is not known (see --help)");
                if (value is null && i + 1 < args.Count && !args[i + 1].StartsWith("--", StringComparison.Ordinal))
                {
                    i++;
                }

                continue;
            }

            if (flags.Contains(name))
            {
                values[key] = value ?? "true";
                continue;
            }

            if (value is null)
            {
                if (i + 1 >= args.Count)
                {
                    errors.Add($"option '{name}' needs a value");
                    continue;
                }

                value = args[++i];
            }

            values[key] = value;
        }

        return values;
    }
}
