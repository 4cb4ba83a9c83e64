using Microsoft.Extensions.Logging;
using Swap.Common.Configuration;

namespace Swap.Donor.Hosting;

/// <summary>
/// swapnbd-daemon's settings, each declared once (key, switch, README default, --help line, how it is read), and
/// their reading from command line, SWAPNBD_DAEMON_ environment variables and a JSON file onto <see cref="DonorOptions"/>.
/// </summary>
public static class DaemonSettings
{
    public const string EnvironmentPrefix = "SWAPNBD_DAEMON_";

    /// <summary>Every setting, in the order of --help and of the README table. Validation is <see cref="DonorOptions.Validate"/>.</summary>
    public static readonly IReadOnlyList<SettingSpec<DonorOptions>> Options =
    [
        new("Config", "--config", "FILE", "–", null, null),
        new("Listen", "--listen", "HOST:PORT", "`127.0.0.1:9400`", "TCP endpoint (default 127.0.0.1:9400; port 0 picks a free port)",
            static (r, k, o) => o.Listen = r.GetString(k, o.Listen)),
        new("AuthKeyFile", "--auth-key-file", "PATH", "none (required)", "cluster key (swapnbd-daemon keygen PATH; mode 0600): serve only servers holding it",
            static (r, k, o) => o.AuthKeyFile = r.GetOptionalString(k)),
        new("InsecureNoAuth", "--insecure-no-auth", null, "off", "serve without a key: whoever reaches the port reads and writes every slab",
            static (r, k, o) => o.InsecureNoAuth = r.GetBool(k, o.InsecureNoAuth)),
        new("MaxMemory", "--max-memory", "SIZE", "`8GiB`", "most memory lent at once, e.g. 8GiB (default 8GiB)",
            static (r, k, o) => o.MaxMemory = r.GetSize(k, o.MaxMemory)),
        new("Headroom", "--headroom", "SIZE", "`1GiB`", "MemAvailable kept for this host; below it slabs are evicted (default 1GiB)",
            static (r, k, o) => o.Headroom = r.GetSize(k, o.Headroom)),
        new("MaxSlabsPerClient", "--max-slabs-per-client", "N", "`64`", "slabs one server may hold (default 64)",
            static (r, k, o) => o.MaxSlabsPerClient = r.GetInt(k, o.MaxSlabsPerClient)),
        new("MaxClients", "--max-clients", "N", "`32`", "servers served at once (default 32)",
            static (r, k, o) => o.MaxClients = r.GetInt(k, o.MaxClients)),
        new("MaxConnections", "--max-connections", "N", "`256`", "connections past their HELLO at most (default 256)",
            static (r, k, o) => o.MaxConnections = r.GetInt(k, o.MaxConnections)),
        new("MaxHandshakes", "--max-handshakes", "N", "`16`", "connections before their HELLO; the oldest is closed for a\nnewcomer beyond N (default 16)",
            static (r, k, o) => o.MaxHandshakes = r.GetInt(k, o.MaxHandshakes)),
        new("HelloTimeout", "--hello-timeout", "SECONDS", "`10`", "a connection that says no HELLO within this is closed (default 10)",
            static (r, k, o) => o.HelloTimeout = r.GetDuration(k, o.HelloTimeout)),
        new("GracePeriod", "--grace-period", "SECONDS", "`30`", "a disconnected server keeps its slabs this long (default 30; 30s works too)",
            static (r, k, o) => o.GracePeriod = r.GetDuration(k, o.GracePeriod)),
        new("MonitorInterval", "--monitor-interval", "SECONDS", "`1`", "how often MemAvailable is checked (default 1)",
            static (r, k, o) => o.MonitorInterval = r.GetDuration(k, o.MonitorInterval)),
        new("EvictBatch", "--evict-batch", "N", "`1`", "E: slabs evicted per round (default 1)",
            static (r, k, o) => o.EvictBatch = r.GetInt(k, o.EvictBatch)),
        new("EvictExtraSamples", "--evict-extra-samples", "N", "`2`", "E': extra slabs sampled per round (default 2)",
            static (r, k, o) => o.EvictExtraSamples = r.GetInt(k, o.EvictExtraSamples)),
        new("MemAvailableSmoothing", "--smoothing", "WEIGHT", "`0.5`", "weight of a new MemAvailable reading, 0 < W <= 1 (default 0.5)",
            static (r, k, o) => o.MemAvailableSmoothing = r.GetDouble(k, o.MemAvailableSmoothing)),
        new("MinSlabSize", "--min-slab-size", "SIZE", "`1MiB`", "smallest slab accepted, a power of two (default 1MiB)",
            static (r, k, o) => o.MinSlabSize = r.GetSize(k, o.MinSlabSize)),
        new("MaxSlabSize", "--max-slab-size", "SIZE", "`16GiB`", "largest slab accepted, a power of two (default 16GiB)",
            static (r, k, o) => o.MaxSlabSize = r.GetSize(k, o.MaxSlabSize)),
        new("LockMemory", "--lock-memory", "true|false", "`true`", "mlockall at start so lent memory stays in RAM (default true)",
            static (r, k, o) => o.LockMemory = r.GetBool(k, o.LockMemory)),
        new("LogLevel", "--log-level", "LEVEL", "`Information`", "Trace, Debug, Information, Warning, Error (default Information)", null),
        new("MetricsListen", "--metrics-listen", "HOST:PORT", "none", "serve metrics in Prometheus' text format on http://HOST:PORT/metrics",
            static (r, k, o) => o.MetricsListen = r.GetOptionalString(k)),
        new("StatusFile", "--status-file", "PATH", "none", "rewrite PATH every second with JSON: memory lent, clients, evictions\n(read it with swapnbd-daemon status)",
            static (r, k, o) => o.StatusFile = r.GetOptionalString(k)),
    ];

    /// <summary>Command-line switch → configuration key.</summary>
    public static readonly IReadOnlyDictionary<string, string> Switches = CommandLineSettings.Switches(Options);

    public static readonly string Usage = OptionUsage.Format(
        """
        swapnbd-daemon: lends this host's free memory to SwapNbd servers as remote swap slabs

        usage: swapnbd-daemon [--config FILE.json] --auth-key-file PATH [options]
               swapnbd-daemon keygen PATH [--force]   (a new cluster key, mode 0600)
               swapnbd-daemon status [--status-file PATH] [--json] [--watch [SECONDS]]   (a running daemon's state)
        """,
        Options,
        column: 32,
        """
        Every option can also be set as SWAPNBD_DAEMON_<KEY> (e.g. SWAPNBD_DAEMON_MAX_MEMORY=4GiB) or in the JSON
        file as "Key": value (e.g. "MaxMemory": "4GiB"); the command line wins over the environment over the file.
        """);

    /// <summary>Reads the options; every problem is added to <paramref name="errors"/> with its key.</summary>
    public static DonorOptions Load(IReadOnlyList<string> args, List<string> errors, out LogLevel logLevel)
    {
        var options = new DonorOptions();
        DeclaredSettings.Load(args, Options, EnvironmentPrefix, excludedEnvironmentPrefix: null, options, errors, out logLevel);
        errors.AddRange(options.Validate());
        return options;
    }
}
