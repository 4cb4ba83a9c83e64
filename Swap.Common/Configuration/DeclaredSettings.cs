using Microsoft.Extensions.Logging;

namespace Swap.Common.Configuration;

/// <summary>
/// Reads a program's declared settings from its command line, its environment variables and the JSON file named by
/// --config (in that order of precedence) onto its options, with every problem reported by key at once.
/// </summary>
public static class DeclaredSettings
{
    /// <param name="options">Holds the defaults on entry; every configured key is read onto it.</param>
    /// <param name="excludedEnvironmentPrefix">Another program's variables under the same prefix, neither read nor refused.</param>
    public static void Load<TOptions>(
        IReadOnlyList<string> args,
        IReadOnlyList<SettingSpec<TOptions>> specs,
        string environmentPrefix,
        string? excludedEnvironmentPrefix,
        TOptions options,
        List<string> errors,
        out LogLevel logLevel)
    {
        var commandLine = CommandLineSettings.Parse(args, specs, errors);
        var reader = new SettingsReader(SettingsReader.Build(commandLine, environmentPrefix, errors, excludedEnvironmentPrefix));
        foreach (var spec in specs)
        {
            if (spec.Bind is null)
            {
                // Read elsewhere, but a key all the same: it must not be refused as unknown.
                reader.GetOptionalString(spec.Key);
            }
            else
            {
                spec.Bind(reader, spec.Key, options);
            }
        }

        logLevel = reader.GetLogLevel();
        reader.RejectUnknownKeys();
        errors.AddRange(reader.Errors);
    }
}
