using Microsoft.Extensions.Logging;
using Swap.Nbd.Server.Hosting;
using Swap.Slabs.Configuration;

namespace Swap.Nbd.Server.Configuration;

/// <summary>Maps command line, SWAPNBD_ environment variables and a JSON file onto <see cref="NbdServerOptions"/>.</summary>
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
        ["--size"] = "Size",
        ["--export-name"] = "ExportName",
        ["--description"] = "Description",
        ["--max-connections"] = "MaxConnections",
        ["--handshake-timeout"] = "HandshakeTimeout",
        ["--max-in-flight"] = "MaxInFlightBytes",
        ["--shutdown-timeout"] = "ShutdownTimeout",
        ["--poll-us"] = "PollMicroseconds",
        ["--log-level"] = "LogLevel",
    };

    public const string Usage = """
        swapnbd-server: an NBD server for remote-memory swap

        usage: swapnbd-server [--config FILE.json] [options]

          --listen HOST:PORT[,HOST:PORT]  TCP endpoints (default 127.0.0.1:10809; "" for none)
          --socket PATH                   Unix socket (nbd-client -unix PATH)
          --backend memory                storage behind the export (default memory: sparse, in-process)
          --size SIZE                     export size, e.g. 1GiB, 64GiB (default 1GiB)
          --export-name NAME              export name (default swapnbd; "" always works too)
          --description TEXT              export description
          --max-connections N             connections beyond N are refused (default 64)
          --handshake-timeout SECONDS     drop clients that stall in the handshake (default 10)
          --max-in-flight SIZE            per-connection bytes of requests in progress (default 128MiB)
          --shutdown-timeout SECONDS      on SIGTERM, time for clients to finish (default 10)
          --poll-us MICROSECONDS          poll for the next request this long before sleeping (default 50; 0 off)
          --log-level LEVEL               Trace, Debug, Information, Warning, Error (default Information)

        Every option can also be set as SWAPNBD_<KEY> (e.g. SWAPNBD_SIZE=4GiB) or in the JSON file
        as "Key": value (e.g. "Size": "4GiB"); the command line wins over the environment over the file.
        """;

    /// <summary>Reads the options; every problem is added to <paramref name="errors"/> with its key.</summary>
    public static NbdServerOptions Load(IReadOnlyList<string> args, List<string> errors, out LogLevel logLevel)
    {
        var commandLine = CommandLineSettings.Parse(args, Switches, new HashSet<string>(), errors);
        var reader = new SettingsReader(SettingsReader.Build(commandLine, EnvironmentPrefix, errors, DaemonEnvironmentPrefix));
        var defaults = new NbdServerOptions();
        var options = new NbdServerOptions
        {
            Listen = reader.GetString("Listen", defaults.Listen),
            Socket = reader.GetOptionalString("Socket"),
            Backend = reader.GetString("Backend", defaults.Backend),
            Size = reader.GetSize("Size", defaults.Size),
            ExportName = reader.GetString("ExportName", defaults.ExportName),
            Description = reader.GetString("Description", defaults.Description),
            MaxConnections = reader.GetInt("MaxConnections", defaults.MaxConnections),
            HandshakeTimeout = reader.GetDuration("HandshakeTimeout", defaults.HandshakeTimeout),
            MaxInFlightBytes = reader.GetSize("MaxInFlightBytes", defaults.MaxInFlightBytes),
            ShutdownTimeout = reader.GetDuration("ShutdownTimeout", defaults.ShutdownTimeout),
            PollMicroseconds = reader.GetInt("PollMicroseconds", defaults.PollMicroseconds),
        };
        reader.GetOptionalString("Config");
        var level = reader.GetString("LogLevel", nameof(LogLevel.Information));
        if (!Enum.TryParse(level, ignoreCase: true, out logLevel))
        {
            reader.Errors.Add($"LogLevel: '{level}' is not one of Trace, Debug, Information, Warning, Error, Critical, None");
            logLevel = LogLevel.Information;
        }

        reader.RejectUnknownKeys();
        errors.AddRange(reader.Errors);
        errors.AddRange(options.Validate());
        return options;
    }
}
