namespace Swap.Nbd.Client.Cli;

/// <summary>A command's arguments split into positionals and <c>--name value</c> / <c>--name=value</c> / <c>--flag</c> options.</summary>
internal sealed class CommandLine
{
    private readonly Dictionary<string, string?> _options = new(StringComparer.Ordinal);
    private readonly List<string> _positionals = [];

    /// <summary>Parses; options not in <paramref name="valued"/> or <paramref name="flags"/> are usage errors.</summary>
    public CommandLine(string command, IEnumerable<string> args, IReadOnlyCollection<string> valued, IReadOnlyCollection<string> flags)
    {
        using var e = args.GetEnumerator();
        while (e.MoveNext())
        {
            var arg = e.Current;
            if (!arg.StartsWith("--", StringComparison.Ordinal) || arg == "--")
            {
                _positionals.Add(arg);
                continue;
            }

            var eq = arg.IndexOf('=', StringComparison.Ordinal);
            var name = eq < 0 ? arg[2..] : arg[2..eq];
            if (flags.Contains(name))
            {
                if (eq >= 0)
                {
                    throw new CliUsageException($"{command}: option '--{name}' takes no value");
                }

                _options[name] = null;
            }
            else if (valued.Contains(name))
            {
                if (eq >= 0)
                {
                    _options[name] = arg[(eq + 1)..];
                }
                else if (e.MoveNext())
                {
                    _options[name] = e.Current;
                }
                else
                {
                    throw new CliUsageException($"{command}: option '--{name}' needs a value");
                }
            }
            else
            {
                throw new CliUsageException($"{command}: unknown option '{arg}' (see --help)");
            }
        }
    }

    public IReadOnlyList<string> Positionals => _positionals;

    public bool Has(string name) => _options.ContainsKey(name);

    public string? Get(string name) => _options.GetValueOrDefault(name);
}
