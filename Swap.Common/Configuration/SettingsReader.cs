using System.Globalization;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;
using Swap.Common.Units;

namespace Swap.Common.Configuration;

/// <summary>
/// Reads typed settings from configuration (JSON file, then environment, then command line), collecting every
/// error with the key it concerns instead of stopping at the first, and refusing keys nobody asked for.
/// </summary>
public sealed class SettingsReader
{
    private readonly IConfiguration _configuration;
    private readonly HashSet<string> _known = new(StringComparer.OrdinalIgnoreCase);

    public SettingsReader(IConfiguration configuration) => _configuration = configuration;

    public List<string> Errors { get; } = [];

    /// <summary>
    /// Builds the layered configuration. <paramref name="commandLine"/> wins over <paramref name="environmentPrefix"/>
    /// variables, which win over the JSON file named by the "Config" key of the command line. Variables starting with
    /// <paramref name="excludedEnvironmentPrefix"/> belong to another program (SWAPNBD_DAEMON_ under SWAPNBD_) and are left out.
    /// </summary>
    public static IConfiguration Build(Dictionary<string, string?> commandLine, string environmentPrefix, List<string> errors, string? excludedEnvironmentPrefix = null)
    {
        var builder = new ConfigurationBuilder();
        if (commandLine.TryGetValue("Config", out var file) && file is not null)
        {
            if (!File.Exists(file))
            {
                errors.Add($"Config: file '{file}' does not exist");
            }
            else
            {
                builder.AddJsonFile(Path.GetFullPath(file), optional: false, reloadOnChange: false);
            }
        }

        var environment = EnvironmentSettings(environmentPrefix, excludedEnvironmentPrefix);
        builder.AddInMemoryCollection(environment);
        builder.AddInMemoryCollection(commandLine);
        try
        {
            return builder.Build();
        }
        catch (Exception ex) when (ex is FormatException or InvalidDataException or IOException)
        {
            errors.Add($"Config: cannot read '{file}': {ex.Message}");
            return new ConfigurationBuilder().AddInMemoryCollection(environment).AddInMemoryCollection(commandLine).Build();
        }
    }

    private static List<KeyValuePair<string, string?>> EnvironmentSettings(string prefix, string? excludedPrefix)
    {
        var variables = new ConfigurationBuilder().AddEnvironmentVariables(prefix).Build().AsEnumerable();
        var excluded = excludedPrefix is not null && excludedPrefix.StartsWith(prefix, StringComparison.OrdinalIgnoreCase)
            ? excludedPrefix[prefix.Length..]
            : null;
        return variables
            .Where(kv => kv.Value is not null && (excluded is null || !kv.Key.StartsWith(excluded, StringComparison.OrdinalIgnoreCase)))
            .ToList();
    }

    public string GetString(string key, string defaultValue) => Raw(key) ?? defaultValue;

    public string? GetOptionalString(string key) => Raw(key);

    public long GetSize(string key, long defaultValue)
    {
        var raw = Raw(key);
        if (raw is null)
        {
            return defaultValue;
        }

        if (ByteSize.TryParse(raw, out var bytes))
        {
            return bytes;
        }

        Errors.Add($"{key}: '{raw}' is not a size; write bytes or use a suffix such as 512K, 64MiB, 12GiB");
        return defaultValue;
    }

    public int GetInt(string key, int defaultValue)
    {
        var raw = Raw(key);
        if (raw is null)
        {
            return defaultValue;
        }

        if (int.TryParse(raw, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value))
        {
            return value;
        }

        Errors.Add($"{key}: '{raw}' is not a whole number");
        return defaultValue;
    }

    /// <summary>A duration written as seconds ("10", "0.5") or as a TimeSpan ("00:00:10").</summary>
    public TimeSpan GetDuration(string key, TimeSpan defaultValue)
    {
        var raw = Raw(key);
        if (raw is null)
        {
            return defaultValue;
        }

        // "30", "30s" and "00:00:30" all mean 30 seconds.
        var number = raw.Length > 1 && raw.EndsWith('s') ? raw.AsSpan(0, raw.Length - 1) : raw.AsSpan();
        if (double.TryParse(number, NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds) && double.IsFinite(seconds) && Math.Abs(seconds) < 1e9)
        {
            return TimeSpan.FromSeconds(seconds);
        }

        if (TimeSpan.TryParse(raw, CultureInfo.InvariantCulture, out var span))
        {
            return span;
        }

        Errors.Add($"{key}: '{raw}' is not a duration; write seconds (e.g. 10 or 10s) or hh:mm:ss");
        return defaultValue;
    }

    /// <summary>The "LogLevel" key: Trace … None, Information when absent.</summary>
    public LogLevel GetLogLevel()
    {
        var level = GetString("LogLevel", nameof(LogLevel.Information));
        if (Enum.TryParse(level, ignoreCase: true, out LogLevel logLevel))
        {
            return logLevel;
        }

        Errors.Add($"LogLevel: '{level}' is not one of Trace, Debug, Information, Warning, Error, Critical, None");
        return LogLevel.Information;
    }

    public double GetDouble(string key, double defaultValue)
    {
        var raw = Raw(key);
        if (raw is null)
        {
            return defaultValue;
        }

        if (double.TryParse(raw, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) && double.IsFinite(value))
        {
            return value;
        }

        Errors.Add($"{key}: '{raw}' is not a number");
        return defaultValue;
    }

    public bool GetBool(string key, bool defaultValue)
    {
        var raw = Raw(key);
        if (raw is null)
        {
            return defaultValue;
        }

        if (bool.TryParse(raw, out var value))
        {
            return value;
        }

        Errors.Add($"{key}: '{raw}' is not true or false");
        return defaultValue;
    }

    /// <summary>Adds an error for every configured key that no Get call asked for.</summary>
    public void RejectUnknownKeys()
    {
        foreach (var (key, value) in _configuration.AsEnumerable())
        {
            if (value is null || _known.Contains(Normalize(key)))
            {
                continue;
            }

            var known = string.Join(", ", _known.Order(StringComparer.Ordinal));
            Errors.Add($"{key}: not a known setting (known: {known})");
        }
    }

    private string? Raw(string key)
    {
        _known.Add(Normalize(key));
        foreach (var (k, v) in _configuration.AsEnumerable())
        {
            if (v is not null && string.Equals(Normalize(k), Normalize(key), StringComparison.OrdinalIgnoreCase))
            {
                return v.Trim();
            }
        }

        return null;
    }

    // SWAPNBD_EXPORT_NAME, ExportName and exportname all mean the same setting.
    private static string Normalize(string key) => key.Replace("_", "", StringComparison.Ordinal).Replace("-", "", StringComparison.Ordinal);
}
