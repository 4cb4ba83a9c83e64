using System.Globalization;

namespace Swap.Nbd.Tests.Support;

/// <summary>
/// The whole system as an operator runs it: <c>out/swapnbd-server</c> in slab mode over N <c>out/swapnbd-daemon</c>
/// processes on loopback and a backup file, all in a temp directory that disposal removes; everyone holds the run's
/// cluster key (<see cref="TestKeys"/>).
/// </summary>
internal sealed class SwapSystem : IAsyncDisposable
{
    private readonly List<string> _serverArgs;
    private readonly List<string> _earlierLog = [];
    private RunningExe _server;

    private SwapSystem(string directory, List<TestDaemon> daemons, RunningExe server, List<string> serverArgs, int port, string socket)
    {
        Directory = directory;
        Daemons = daemons;
        _server = server;
        _serverArgs = serverArgs;
        Port = port;
        Socket = socket;
    }

    public string Directory { get; }

    public IReadOnlyList<TestDaemon> Daemons { get; }

    /// <summary>TCP port on 127.0.0.1.</summary>
    public int Port { get; }

    /// <summary>Unix socket path (for <c>nbd-client -unix</c>).</summary>
    public string Socket { get; }

    public string Uri => $"nbd://127.0.0.1:{Port}";

    public string BackupDisk => Path.Combine(Directory, "backup.img");

    /// <summary>The server's --status-file: JSON of where the pages are, rewritten every second.</summary>
    public string StatusFile => Path.Combine(Directory, "status.json");

    public int ServerPid => _server.Pid;

    /// <summary>What the server printed so far (stdout and stderr, one line an entry), across restarts.</summary>
    public IReadOnlyCollection<string> ServerLog => [.. _earlierLog, .. _server.Lines];

    /// <summary>Starts the daemons, then the server over them, and waits until the server listens.</summary>
    public static async Task<SwapSystem> StartAsync(long size, long slabSize, int daemons = 3, IEnumerable<string>? extraServerArgs = null, CancellationToken ct = default)
    {
        var directory = System.IO.Directory.CreateTempSubdirectory("swapnbd-system-").FullName;
        var started = new List<TestDaemon>();
        RunningExe? server = null;
        try
        {
            for (var i = 0; i < daemons; i++)
            {
                started.Add(await TestDaemon.StartAsync(process: true));
            }

            var portal = Path.Combine(directory, "portal.list");
            await File.WriteAllTextAsync(portal, $"# {daemons} donors\n{daemons}\n" + string.Join('\n', started.Select(d => d.Name)) + "\n", ct);
            var socket = Path.Combine(directory, "nbd.sock");
            var args = new List<string>
            {
                "--portal", portal, "--backup-disk", Path.Combine(directory, "backup.img"),
                "--size", size.ToString(CultureInfo.InvariantCulture), "--slab-size", slabSize.ToString(CultureInfo.InvariantCulture),
                "--socket", socket, "--status-file", Path.Combine(directory, "status.json"),
                "--auth-key-file", TestKeys.File,
            };
            args.AddRange(extraServerArgs ?? []);

            // The server picks its port (no other process can take it first); restarts reuse it, since clients
            // reconnect to the address they know.
            server = RunningExe.Start("swapnbd-server", [.. args, "--listen", "127.0.0.1:0"]);
            var port = await server.ListeningPortAsync(ct);
            await server.WaitListeningAsync(port, ct);
            return new SwapSystem(directory, started, server, args, port, socket);
        }
        catch
        {
            await StopAsync(server, started, directory);
            throw;
        }
    }

    /// <summary>SIGKILLs the server (no shutdown, nothing flushed) and starts it again with the same options and backup disk.</summary>
    public async Task RestartServerAsync(CancellationToken ct, TimeSpan pause = default)
    {
        _earlierLog.AddRange(_server.Lines);
        _server.Dispose(); // SIGKILL
        // An outage that clients notice (the issue asks for 3 s), rather than a listener that is back at once.
        await Task.Delay(pause, ct);
        _earlierLog.Add("--- server killed and restarted ---");
        _server = RunningExe.Start("swapnbd-server", [.. _serverArgs, "--listen", $"127.0.0.1:{Port}"]);
        await _server.WaitListeningAsync(Port, ct);
    }

    /// <summary>The status file now (null before the server wrote it).</summary>
    public async Task<System.Text.Json.JsonDocument?> ReadStatusAsync(CancellationToken ct) =>
        File.Exists(StatusFile) ? System.Text.Json.JsonDocument.Parse(await File.ReadAllTextAsync(StatusFile, ct)) : null;

    /// <summary>The server's log lines that record a slab placed on a daemon.</summary>
    public IReadOnlyList<string> Placements() => ServerLog.Where(l => l.Contains("placed on", StringComparison.Ordinal)).ToList();

    public ValueTask DisposeAsync() => new(StopAsync(_server, Daemons, Directory));

    private static async Task StopAsync(RunningExe? server, IEnumerable<TestDaemon> daemons, string directory)
    {
        server?.Dispose();

        foreach (var daemon in daemons)
        {
            await daemon.DisposeAsync();
        }

        if (System.IO.Directory.Exists(directory))
        {
            System.IO.Directory.Delete(directory, recursive: true);
        }
    }
}
