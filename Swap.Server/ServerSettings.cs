using Microsoft.Extensions.Logging;
using Swap.Nbd.Server.Hosting;
using Swap.Common.Configuration;

namespace Swap.Server;

/// <summary>Maps command line, SWAPNBD_ environment variables and a JSON file onto <see cref="ServerOptions"/>.</summary>
public static class ServerSettings
{
    public const string EnvironmentPrefix = "SWAPNBD_";

    /// <summary>swapnbd-daemon's variables share the SWAPNBD_ prefix; the server must not refuse them as unknown keys.</summary>
    public const string DaemonEnvironmentPrefix = "SWAPNBD_DAEMON_";

    /// <summary>Command-line switch → configuration key.</summary>
    public static readonly IReadOnlyDictionary<string, string> Switches = new Dictionary<string, string>
    {
        ["--config"] = "Config",
        ["--listen"] = "Listen",
        ["--socket"] = "Socket",
        ["--backend"] = "Backend",
        ["--portal"] = "Portal",
        ["--backup-disk"] = "BackupDisk",
        ["--slab-size"] = "SlabSize",
        ["--daemon-timeout"] = "DaemonTimeout",
        ["--connect-timeout"] = "ConnectTimeout",
        ["--heartbeat"] = "HeartbeatInterval",
        ["--placement-retry"] = "PlacementRetryMaxDelay",
        ["--size"] = "Size",
        ["--export-name"] = "ExportName",
        ["--description"] = "Description",
        ["--max-connections"] = "MaxConnections",
        ["--handshake-timeout"] = "HandshakeTimeout",
        ["--max-in-flight"] = "MaxInFlightBytes",
        ["--shutdown-timeout"] = "ShutdownTimeout",
        ["--poll-us"] = "PollMicroseconds",
        ["--lock-memory"] = "LockMemory",
        ["--log-level"] = "LogLevel",
        ["--status-file"] = "StatusFile",
    };

    public const string Usage = """
        swapnbd-server: an NBD server for remote-memory swap

        usage: swapnbd-server [--config FILE.json] [options]

          --listen HOST:PORT[,HOST:PORT]  TCP endpoints (default 127.0.0.1:10809; "" for none)
          --socket PATH                   Unix socket (nbd-client -unix PATH)
          --backend memory|slabs          storage behind the export (default memory: sparse, in-process;
                                          slabs when --portal is given)
          --portal FILE                   slab mode: donor daemons, Infiniswap's portal.list format
          --backup-disk PATH              slab mode: file or partition mirroring every page (>= --size)
          --slab-size SIZE                slab mode: bytes per slab, power of two 1MiB..16GiB (default 1GiB)
          --daemon-timeout SECONDS        slab mode: unanswered daemon request fails the daemon (default 2)
          --connect-timeout SECONDS       slab mode: connect + hello timeout per attempt (default 2)
          --heartbeat SECONDS             slab mode: idle daemon links are checked this often (default 1)
          --placement-retry SECONDS       slab mode: longest wait before retrying an unplaced slab (default 30)
          --size SIZE                     export size, e.g. 1GiB, 64GiB (default 1GiB)
          --export-name NAME              export name (default swapnbd; "" always works too)
          --description TEXT              export description
          --max-connections N             connections beyond N are refused (default 64)
          --handshake-timeout SECONDS     drop clients that stall in the handshake (default 10)
          --max-in-flight SIZE            per-connection bytes of requests in progress (default 128MiB)
          --shutdown-timeout SECONDS      on SIGTERM, time for clients to finish (default 10)
          --poll-us MICROSECONDS          poll for the next request this long before sleeping (default 50; 0 off)
          --lock-memory true|false        mlockall at start so the server's pages stay in RAM (default true)
          --log-level LEVEL               Trace, Debug, Information, Warning, Error (default Information)
          --status-file PATH              rewrite PATH every second with JSON: where the pages are (per daemon, disk)

        Every option can also be set as SWAPNBD_<KEY> (e.g. SWAPNBD_SIZE=4GiB) or in the JSON file
        as "Key": value (e.g. "Size": "4GiB"); the command line wins over the environment over the file.
        """;

    /// <summary>Reads the options; every problem is added to <paramref name="errors"/> with its key.</summary>
    public static ServerOptions Load(IReadOnlyList<string> args, List<string> errors, out LogLevel logLevel)
    {
        var commandLine = CommandLineSettings.Parse(args, Switches, new HashSet<string>(), errors);
        var reader = new SettingsReader(SettingsReader.Build(commandLine, EnvironmentPrefix, errors, DaemonEnvironmentPrefix));
        var defaults = new ServerOptions();
        var nbd = defaults.Nbd;
        var options = new ServerOptions
        {
            Nbd = new NbdServerOptions
            {
                Listen = reader.GetString("Listen", nbd.Listen),
                Socket = reader.GetOptionalString("Socket"),
                ExportName = reader.GetString("ExportName", nbd.ExportName),
                Description = reader.GetString("Description", nbd.Description),
                MaxConnections = reader.GetInt("MaxConnections", nbd.MaxConnections),
                HandshakeTimeout = reader.GetDuration("HandshakeTimeout", nbd.HandshakeTimeout),
                MaxInFlightBytes = reader.GetSize("MaxInFlightBytes", nbd.MaxInFlightBytes),
                ShutdownTimeout = reader.GetDuration("ShutdownTimeout", nbd.ShutdownTimeout),
                PollMicroseconds = reader.GetInt("PollMicroseconds", nbd.PollMicroseconds),
            },
            Portal = reader.GetOptionalString("Portal"),
            BackupDisk = reader.GetOptionalString("BackupDisk"),
            Size = reader.GetSize("Size", defaults.Size),
            StatusFile = reader.GetOptionalString("StatusFile"),
            LockMemory = reader.GetBool("LockMemory", defaults.LockMemory),
        };
        options.Backend = reader.GetString("Backend", options.Portal is null ? defaults.Backend : "slabs");
        var slabs = defaults.Slabs;
        options.Slabs = slabs with
        {
            SlabSize = reader.GetSize("SlabSize", slabs.SlabSize),
            PlacementRetryMaxDelay = reader.GetDuration("PlacementRetryMaxDelay", slabs.PlacementRetryMaxDelay),
            Links = slabs.Links with
            {
                RequestTimeout = reader.GetDuration("DaemonTimeout", slabs.Links.RequestTimeout),
                ConnectTimeout = reader.GetDuration("ConnectTimeout", slabs.Links.ConnectTimeout),
                HeartbeatInterval = reader.GetDuration("HeartbeatInterval", slabs.Links.HeartbeatInterval),
            },
        };
        reader.GetOptionalString("Config");
        logLevel = reader.GetLogLevel();

        reader.RejectUnknownKeys();
        errors.AddRange(reader.Errors);
        errors.AddRange(options.Validate());
        return options;
    }
}
