namespace Swap.Common.Configuration;

/// <summary>
/// Turns the command line of swapnbd-server or swapnbd-daemon into configuration keys by their declarations,
/// refusing anything undeclared with an error that names the argument.
/// </summary>
public static class CommandLineSettings
{
    public static Dictionary<string, string?> Parse<TOptions>(IReadOnlyList<string> args, IReadOnlyList<SettingSpec<TOptions>> specs, List<string> errors)
    {
        var bySwitch = specs.ToDictionary(s => s.Switch, StringComparer.Ordinal);
        var values = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
        var tokens = CommandLineScanner.Scan(args, name => bySwitch.TryGetValue(name, out var spec) ? spec.Value is not null : null);
        foreach (var token in tokens)
        {
            switch (token.Kind)
            {
                case CommandLineTokenKind.Option:
                    values[bySwitch[token.Switch].Key] = token.Value;
                    break;
                case CommandLineTokenKind.Stray:
                    errors.Add($"argument '{token.Argument}': expected an option such as --listen HOST:PORT (see --help)");
                    break;
                case CommandLineTokenKind.Unknown:
                    errors.Add($"option '{token.Switch}' is not known (see --help)");
                    break;
                default:
                    errors.Add($"option '{token.Switch}' needs a value");
                    break;
            }
        }

        return values;
    }

    /// <summary>Switch → key, for callers that list the options ("--listen" → "Listen").</summary>
    public static IReadOnlyDictionary<string, string> Switches<TOptions>(IEnumerable<SettingSpec<TOptions>> specs) =>
        specs.ToDictionary(s => s.Switch, s => s.Key, StringComparer.Ordinal);
}
