using Microsoft.Extensions.Logging;
using Swap.Common.Configuration;

namespace Swap.Server;

/// <summary>
/// swapnbd-server's settings, each declared once (key, switch, README default, --help line, how it is read), and
/// their reading from command line, SWAPNBD_ environment variables and a JSON file onto <see cref="ServerOptions"/>.
/// </summary>
public static class ServerSettings
{
    public const string EnvironmentPrefix = "SWAPNBD_";

    /// <summary>swapnbd-daemon's variables share the SWAPNBD_ prefix; the server must not refuse them as unknown keys.</summary>
    public const string DaemonEnvironmentPrefix = "SWAPNBD_DAEMON_";

    /// <summary>Every setting, in the order of --help and of the README table. Validation is <see cref="ServerOptions.Validate"/>.</summary>
    public static readonly IReadOnlyList<SettingSpec<ServerOptions>> Options =
    [
        new("Config", "--config", "FILE", "–", null, null),
        new("Listen", "--listen", "HOST:PORT[,HOST:PORT]", "none",
            "TCP endpoints (default none); whoever can connect reads and writes\nthe device: a warning is logged for each",
            static (r, k, o) => o.Nbd.Listen = r.GetString(k, o.Nbd.Listen)),
        new("Socket", "--socket", "PATH", "`/run/swapnbd/swapnbd.sock` without `--listen`",
            "Unix socket, in a directory of mode 0700, for nbd-client -unix PATH\n(default /run/swapnbd/swapnbd.sock without --listen)",
            static (r, k, o) => o.Nbd.Socket = r.GetOptionalString(k)),
        new("Backend", "--backend", "memory|slabs", "`memory` (`slabs` when `--portal` is given)",
            "storage behind the export (default memory: sparse, in-process;\nslabs when --portal is given)",
            static (r, k, o) => o.Backend = r.GetString(k, r.GetOptionalString("Portal") is null ? o.Backend : "slabs")),
        new("Portal", "--portal", "FILE|URL", "none",
            "slab mode: donor daemons: a portal.list file (Infiniswap's format),\ndns://NAME:PORT (A/AAAA records) or dns+srv://_SVC._PROTO.NAME (SRV)",
            static (r, k, o) => o.Portal = r.GetOptionalString(k)),
        new("DnsServer", "--dns-server", "IP:PORT", "those in `/etc/resolv.conf`",
            "slab mode, DNS portal: the name server to ask (default: those in\n/etc/resolv.conf)",
            static (r, k, o) => o.DnsServer = r.GetOptionalString(k)),
        new("PortalRefresh", "--portal-refresh", "SECONDS", "`30`",
            "slab mode, DNS portal: longest time between resolutions; they follow\nthe records' TTL, at least 1 s apart (default 30)",
            static (r, k, o) => o.PortalRefresh = r.GetDuration(k, o.PortalRefresh)),
        new("BackupDisk", "--backup-disk", "PATH", "none", "slab mode: file or partition mirroring every page (>= --size)",
            static (r, k, o) => o.BackupDisk = r.GetOptionalString(k)),
        new("BackupIo", "--backup-io", "MODE", "`auto`",
            "slab mode: backup disk I/O: direct (O_DIRECT, around the page cache),\nbuffered (through it) or auto: direct where possible (default auto)",
            static (r, k, o) => o.BackupIo = r.GetString(k, o.BackupIo)),
        new("AuthKeyFile", "--auth-key-file", "PATH", "none (required in slab mode)", "slab mode: cluster key file (mode 0600), the daemons' own",
            static (r, k, o) => o.AuthKeyFile = r.GetOptionalString(k)),
        new("InsecureNoAuth", "--insecure-no-auth", null, "off", "slab mode: no key; pages go to whoever answers at the portal's addresses",
            static (r, k, o) => o.InsecureNoAuth = r.GetBool(k, o.InsecureNoAuth)),
        new("SlabSize", "--slab-size", "SIZE", "`1GiB`", "slab mode: bytes per slab, power of two 1MiB..16GiB (default 1GiB)",
            static (r, k, o) => o.Slabs = o.Slabs with { SlabSize = r.GetSize(k, o.Slabs.SlabSize) }),
        new("DaemonTimeout", "--daemon-timeout", "SECONDS", "`2`", "slab mode: unanswered daemon request fails the daemon (default 2)",
            static (r, k, o) => o.Slabs = o.Slabs with { Links = o.Slabs.Links with { RequestTimeout = r.GetDuration(k, o.Slabs.Links.RequestTimeout) } }),
        new("ConnectTimeout", "--connect-timeout", "SECONDS", "`2`", "slab mode: connect + hello timeout per attempt (default 2)",
            static (r, k, o) => o.Slabs = o.Slabs with { Links = o.Slabs.Links with { ConnectTimeout = r.GetDuration(k, o.Slabs.Links.ConnectTimeout) } }),
        new("HeartbeatInterval", "--heartbeat", "SECONDS", "`1`", "slab mode: idle daemon links are checked this often (default 1)",
            static (r, k, o) => o.Slabs = o.Slabs with { Links = o.Slabs.Links with { HeartbeatInterval = r.GetDuration(k, o.Slabs.Links.HeartbeatInterval) } }),
        new("PlacementRetryMaxDelay", "--placement-retry", "SECONDS", "`30`", "slab mode: longest wait before retrying an unplaced slab (default 30)",
            static (r, k, o) => o.Slabs = o.Slabs with { PlacementRetryMaxDelay = r.GetDuration(k, o.Slabs.PlacementRetryMaxDelay) }),
        new("SealPages", "--seal-pages", "true|false", "`true`", "slab mode: seal pages sent to daemons (default true; false only to measure)",
            static (r, k, o) => o.Slabs = o.Slabs with { SealPages = r.GetBool(k, o.Slabs.SealPages) }),
        new("HedgeReads", "--hedge-reads", "true|false", "`true`",
            "slab mode: a read its daemon is slow to answer is read from the\nbackup disk too; the first answer wins (default true)",
            static (r, k, o) => o.Slabs = o.Slabs with { HedgeReads = r.GetBool(k, o.Slabs.HedgeReads) }),
        new("HedgeFloorMicroseconds", "--hedge-floor-us", "MICROSECONDS", "`100`", "slab mode: the shortest hedging bound (default 100)",
            static (r, k, o) => o.Slabs = o.Slabs with { HedgeFloor = TimeSpan.FromMicroseconds(r.GetInt(k, (int)o.Slabs.HedgeFloor.TotalMicroseconds)) }),
        new("PrefetchCache", "--prefetch-cache", "SIZE", "`0`",
            "slab mode: locked memory for pages read ahead of a swap-in stream\nwith a trend (sequential, reverse, strided), e.g. 16MiB; 0 = off (default 0)",
            static (r, k, o) => o.Slabs = o.Slabs with { PrefetchCacheSize = r.GetSize(k, o.Slabs.PrefetchCacheSize) }),
        new("PrefetchRate", "--prefetch-rate", "SIZE", "`256MiB`", "slab mode: donor bytes a second prefetching may add (default 256MiB)",
            static (r, k, o) => o.Slabs = o.Slabs with { PrefetchRate = r.GetSize(k, o.Slabs.PrefetchRate) }),
        new("Size", "--size", "SIZE", "`1GiB`", "export size, e.g. 1GiB, 64GiB (default 1GiB)",
            static (r, k, o) => o.Size = r.GetSize(k, o.Size)),
        new("ExportName", "--export-name", "NAME", "`swapnbd`", "export name (default swapnbd; \"\" always works too)",
            static (r, k, o) => o.Nbd.ExportName = r.GetString(k, o.Nbd.ExportName)),
        new("Description", "--description", "TEXT", "`SwapNbd export`", "export description",
            static (r, k, o) => o.Nbd.Description = r.GetString(k, o.Nbd.Description)),
        new("MaxConnections", "--max-connections", "N", "`64`", "connections past their handshake at most (default 64)",
            static (r, k, o) => o.Nbd.MaxConnections = r.GetInt(k, o.Nbd.MaxConnections)),
        new("MaxHandshakes", "--max-handshakes", "N", "`16`", "connections in their handshake, per listener; the oldest is closed\nfor a newcomer beyond N (default 16)",
            static (r, k, o) => o.Nbd.MaxHandshakes = r.GetInt(k, o.Nbd.MaxHandshakes)),
        new("HandshakeTimeout", "--handshake-timeout", "SECONDS", "`10`", "drop clients that stall in the handshake (default 10)",
            static (r, k, o) => o.Nbd.HandshakeTimeout = r.GetDuration(k, o.Nbd.HandshakeTimeout)),
        new("MaxInFlightBytes", "--max-in-flight", "SIZE", "`128MiB`", "per-connection bytes of requests in progress (default 128MiB)",
            static (r, k, o) => o.Nbd.MaxInFlightBytes = r.GetSize(k, o.Nbd.MaxInFlightBytes)),
        new("ShutdownTimeout", "--shutdown-timeout", "SECONDS", "`10`", "on SIGTERM, time for clients to finish (default 10)",
            static (r, k, o) => o.Nbd.ShutdownTimeout = r.GetDuration(k, o.Nbd.ShutdownTimeout)),
        new("PollMicroseconds", "--poll-us", "MICROSECONDS", "`50`", "poll for the next request this long before sleeping (default 50; 0 off)",
            static (r, k, o) => o.Nbd.PollMicroseconds = r.GetInt(k, o.Nbd.PollMicroseconds)),
        new("LockMemory", "--lock-memory", "true|false", "`true`", "mlockall at start so the server's pages stay in RAM (default true)",
            static (r, k, o) => o.LockMemory = r.GetBool(k, o.LockMemory)),
        new("RealtimePriority", "--realtime-priority", "N", "`0`", "SCHED_RR priority 1-99 for the server's threads (0: normal policy;\n1 recommended for whole-machine swap, needs CAP_SYS_NICE)",
            static (r, k, o) => o.RealtimePriority = r.GetInt(k, o.RealtimePriority)),
        new("LogLevel", "--log-level", "LEVEL", "`Information`", "Trace, Debug, Information, Warning, Error (default Information)", null),
        new("StatusFile", "--status-file", "PATH", "none", "rewrite PATH every second with JSON: where the pages are (per daemon, disk)",
            static (r, k, o) => o.StatusFile = r.GetOptionalString(k)),
        new("MetricsListen", "--metrics-listen", "HOST:PORT", "none", "serve metrics in Prometheus' text format on http://HOST:PORT/metrics",
            static (r, k, o) => o.MetricsListen = r.GetOptionalString(k)),
    ];

    /// <summary>Command-line switch → configuration key.</summary>
    public static readonly IReadOnlyDictionary<string, string> Switches = CommandLineSettings.Switches(Options);

    public static readonly string Usage = OptionUsage.Format(
        """
        swapnbd-server: an NBD server for remote-memory swap

        usage: swapnbd-server [--config FILE.json] [options]
               swapnbd-server status [--status-file PATH] [--json] [--watch [SECONDS]]   (a running server's state)
        """,
        Options,
        column: 34,
        """
        Every option can also be set as SWAPNBD_<KEY> (e.g. SWAPNBD_SIZE=4GiB) or in the JSON file
        as "Key": value (e.g. "Size": "4GiB"); the command line wins over the environment over the file.
        """);

    /// <summary>Reads the options; every problem is added to <paramref name="errors"/> with its key.</summary>
    public static ServerOptions Load(IReadOnlyList<string> args, List<string> errors, out LogLevel logLevel)
    {
        var options = new ServerOptions();
        DeclaredSettings.Load(args, Options, EnvironmentPrefix, DaemonEnvironmentPrefix, options, errors, out logLevel);
        // No --listen and no --socket: the export is the kernel's alone, on the default socket (systemd's
        // RuntimeDirectory=swapnbd sets $RUNTIME_DIRECTORY to /run/swapnbd; tests point it at a temp dir).
        options.Nbd.UseDefaultSocket(Environment.GetEnvironmentVariable("RUNTIME_DIRECTORY"));
        errors.AddRange(options.Validate());
        return options;
    }
}
