using Microsoft.Extensions.Logging;
using Swap.Common.Configuration;

namespace Swap.Donor.Hosting;

/// <summary>Maps command line, SWAPNBD_DAEMON_ environment variables and a JSON file onto <see cref="DonorOptions"/>.</summary>
public static class DaemonSettings
{
    public const string EnvironmentPrefix = "SWAPNBD_DAEMON_";

    /// <summary>Command-line switch → configuration key.</summary>
    public static readonly IReadOnlyDictionary<string, string> Switches = new Dictionary<string, string>
    {
        ["--config"] = "Config",
        ["--listen"] = "Listen",
        ["--max-memory"] = "MaxMemory",
        ["--headroom"] = "Headroom",
        ["--max-slabs-per-client"] = "MaxSlabsPerClient",
        ["--max-clients"] = "MaxClients",
        ["--max-connections"] = "MaxConnections",
        ["--hello-timeout"] = "HelloTimeout",
        ["--grace-period"] = "GracePeriod",
        ["--monitor-interval"] = "MonitorInterval",
        ["--evict-batch"] = "EvictBatch",
        ["--evict-extra-samples"] = "EvictExtraSamples",
        ["--smoothing"] = "MemAvailableSmoothing",
        ["--min-slab-size"] = "MinSlabSize",
        ["--max-slab-size"] = "MaxSlabSize",
        ["--lock-memory"] = "LockMemory",
        ["--log-level"] = "LogLevel",
    };

    public const string Usage = """
        swapnbd-daemon: lends this host's free memory to SwapNbd servers as remote swap slabs

        usage: swapnbd-daemon [--config FILE.json] [options]

          --listen HOST:PORT            TCP endpoint (default 127.0.0.1:9400; port 0 picks a free port)
          --max-memory SIZE             most memory lent at once, e.g. 8GiB (default 8GiB)
          --headroom SIZE               MemAvailable kept for this host; below it slabs are evicted (default 1GiB)
          --max-slabs-per-client N      slabs one server may hold (default 64)
          --max-clients N               servers served at once (default 32)
          --max-connections N           open connections at most (default 256)
          --hello-timeout SECONDS       a connection that says no HELLO within this is closed (default 10)
          --grace-period SECONDS        a disconnected server keeps its slabs this long (default 30; 30s works too)
          --monitor-interval SECONDS    how often MemAvailable is checked (default 1)
          --evict-batch N               E: slabs evicted per round (default 1)
          --evict-extra-samples N       E': extra slabs sampled per round (default 2)
          --smoothing WEIGHT            weight of a new MemAvailable reading, 0 < W <= 1 (default 0.5)
          --min-slab-size SIZE          smallest slab accepted, a power of two (default 1MiB)
          --max-slab-size SIZE          largest slab accepted, a power of two (default 16GiB)
          --lock-memory true|false      mlockall at start so lent memory stays in RAM (default true)
          --log-level LEVEL             Trace, Debug, Information, Warning, Error (default Information)

        Every option can also be set as SWAPNBD_DAEMON_<KEY> (e.g. SWAPNBD_DAEMON_MAX_MEMORY=4GiB) or in the JSON
        file as "Key": value (e.g. "MaxMemory": "4GiB"); the command line wins over the environment over the file.
        """;

    /// <summary>Reads the options; every problem is added to <paramref name="errors"/> with its key.</summary>
    public static DonorOptions Load(IReadOnlyList<string> args, List<string> errors, out LogLevel logLevel)
    {
        var commandLine = CommandLineSettings.Parse(args, Switches, new HashSet<string>(), errors);
        var reader = new SettingsReader(SettingsReader.Build(commandLine, EnvironmentPrefix, errors));
        var defaults = new DonorOptions();
        var options = new DonorOptions
        {
            Listen = reader.GetString("Listen", defaults.Listen),
            MaxMemory = reader.GetSize("MaxMemory", defaults.MaxMemory),
            Headroom = reader.GetSize("Headroom", defaults.Headroom),
            MaxSlabsPerClient = reader.GetInt("MaxSlabsPerClient", defaults.MaxSlabsPerClient),
            MaxClients = reader.GetInt("MaxClients", defaults.MaxClients),
            MaxConnections = reader.GetInt("MaxConnections", defaults.MaxConnections),
            HelloTimeout = reader.GetDuration("HelloTimeout", defaults.HelloTimeout),
            GracePeriod = reader.GetDuration("GracePeriod", defaults.GracePeriod),
            MonitorInterval = reader.GetDuration("MonitorInterval", defaults.MonitorInterval),
            EvictBatch = reader.GetInt("EvictBatch", defaults.EvictBatch),
            EvictExtraSamples = reader.GetInt("EvictExtraSamples", defaults.EvictExtraSamples),
            MemAvailableSmoothing = reader.GetDouble("MemAvailableSmoothing", defaults.MemAvailableSmoothing),
            MinSlabSize = reader.GetSize("MinSlabSize", defaults.MinSlabSize),
            MaxSlabSize = reader.GetSize("MaxSlabSize", defaults.MaxSlabSize),
            LockMemory = reader.GetBool("LockMemory", defaults.LockMemory),
        };
        reader.GetOptionalString("Config");
        logLevel = reader.GetLogLevel();

        reader.RejectUnknownKeys();
        errors.AddRange(reader.Errors);
        errors.AddRange(options.Validate());
        return options;
    }
}
