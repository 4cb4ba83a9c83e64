using System.Globalization;
using NUnit.Framework;

namespace Swap.Nbd.Tests.Support;

/// <summary>
/// The whole system as an operator runs it: <c>out/swapnbd-server</c> in slab mode over N <c>out/swapnbd-daemon</c>
/// processes on loopback (or each in a network lab's namespace: <see cref="StartInLabAsync"/>) and a backup file, all
/// in a temp directory that disposal removes; everyone holds the run's cluster key (<see cref="TestKeys"/>).
/// </summary>
internal sealed class SwapSystem : IAsyncDisposable
{
    private readonly List<string> _serverArgs;
    private readonly IReadOnlyList<string>? _serverWrapper;
    private readonly List<string> _earlierLog = [];
    private RunningExe _server;

    private SwapSystem(string directory, List<TestDaemon> daemons, RunningExe server, List<string> serverArgs, int port, string socket,
        IReadOnlyList<string>? serverWrapper)
    {
        Directory = directory;
        Daemons = daemons;
        _server = server;
        _serverArgs = serverArgs;
        _serverWrapper = serverWrapper;
        Port = port;
        Socket = socket;
    }

    public string Directory { get; }

    public IReadOnlyList<TestDaemon> Daemons { get; }

    /// <summary>TCP port on 127.0.0.1 (0 in a network lab: only the Unix socket serves).</summary>
    public int Port { get; }

    /// <summary>Unix socket path (for <c>nbd-client -unix</c>).</summary>
    public string Socket { get; }

    public string Uri => $"nbd://127.0.0.1:{Port}";

    /// <summary>The export over its Unix socket, as libnbd and the client library name it.</summary>
    public string UnixUri => $"nbd+unix:///?socket={Socket}";

    public string BackupDisk => Path.Combine(Directory, "backup.img");

    /// <summary>The server's --status-file: JSON of where the pages are, rewritten every second.</summary>
    public string StatusFile => Path.Combine(Directory, "status.json");

    public int ServerPid => _server.Pid;

    /// <summary>What the server printed so far (stdout and stderr, one line an entry), across restarts.</summary>
    public IReadOnlyCollection<string> ServerLog => [.. _earlierLog, .. _server.Lines];

    /// <summary>Starts the daemons, then the server over them, and waits until the server listens.</summary>
    /// <param name="daemonArgs">Options for daemon K (0-based) after the usual ones, e.g. its --metrics-listen.</param>
    public static Task<SwapSystem> StartAsync(long size, long slabSize, int daemons = 3, IEnumerable<string>? extraServerArgs = null,
        Func<int, IReadOnlyList<string>>? daemonArgs = null, CancellationToken ct = default) =>
        StartAsync(size, slabSize, Enumerable.Range(0, daemons).Select(k => (Func<Task<TestDaemon>>)(() => daemonArgs is null
                ? TestDaemon.StartAsync(process: true)
                : TestDaemon.StartProcessAsync("127.0.0.1", [], daemonArgs(k)))).ToList(),
            extraServerArgs, lab: null, ct);

    /// <summary>
    /// The same system in a network lab: donor K in the lab's namespace dK listening on 198.18.K.2 (the portal names
    /// those addresses), the server in the server namespace serving only its Unix socket (<see cref="Socket"/>, which
    /// clients in the root namespace reach; <see cref="Port"/> is 0). Every donor link goes through the lab's faults.
    /// </summary>
    /// <param name="extraDaemonArgs">Options given to every daemon after the usual ones (e.g. --max-slabs-per-client).</param>
    public static Task<SwapSystem> StartInLabAsync(NetLab lab, long size, long slabSize, IEnumerable<string>? extraServerArgs = null,
        IReadOnlyList<string>? extraDaemonArgs = null, CancellationToken ct = default) =>
        StartAsync(size, slabSize, Enumerable.Range(1, lab.Donors)
                .Select(k => (Func<Task<TestDaemon>>)(() => TestDaemon.StartProcessAsync(NetLab.DonorAddress(k), lab.Wrapper($"d{k}"), extraDaemonArgs)))
                .ToList(),
            extraServerArgs, lab, ct);

    private static async Task<SwapSystem> StartAsync(long size, long slabSize, IReadOnlyList<Func<Task<TestDaemon>>> daemons,
        IEnumerable<string>? extraServerArgs, NetLab? lab, CancellationToken ct)
    {
        var directory = System.IO.Directory.CreateTempSubdirectory("swapnbd-system-").FullName;
        var started = new List<TestDaemon>();
        RunningExe? server = null;
        try
        {
            foreach (var start in daemons)
            {
                started.Add(await start());
            }

            var portal = Path.Combine(directory, "portal.list");
            await File.WriteAllTextAsync(portal, $"# {started.Count} donors\n{started.Count}\n" + string.Join('\n', started.Select(d => d.Name)) + "\n", ct);
            var socket = Path.Combine(directory, "nbd.sock");
            var args = new List<string>
            {
                "--portal", portal, "--backup-disk", Path.Combine(directory, "backup.img"),
                "--size", size.ToString(CultureInfo.InvariantCulture), "--slab-size", slabSize.ToString(CultureInfo.InvariantCulture),
                "--socket", socket, "--status-file", Path.Combine(directory, "status.json"),
                "--auth-key-file", TestKeys.File,
            };
            args.AddRange(extraServerArgs ?? []);

            if (lab is not null)
            {
                // In the lab's server namespace the test cannot reach a TCP port: the Unix socket is the export.
                var wrapper = lab.Wrapper("srv");
                server = RunningExe.Start("swapnbd-server", args, wrapper);
                await server.WaitListeningAsync(socket, ct);
                return new SwapSystem(directory, started, server, args, 0, socket, wrapper);
            }

            // The server picks its port (no other process can take it first); restarts reuse it, since clients
            // reconnect to the address they know.
            server = RunningExe.Start("swapnbd-server", [.. args, "--listen", "127.0.0.1:0"]);
            var port = await server.ListeningPortAsync(ct);
            await server.WaitListeningAsync(port, ct);
            return new SwapSystem(directory, started, server, args, port, socket, null);
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
        if (_serverWrapper is not null)
        {
            _server = RunningExe.Start("swapnbd-server", _serverArgs, _serverWrapper);
            await _server.WaitListeningAsync(Socket, ct);
            return;
        }

        _server = RunningExe.Start("swapnbd-server", [.. _serverArgs, "--listen", $"127.0.0.1:{Port}"]);
        await _server.WaitListeningAsync(Port, ct);
    }

    /// <summary>The status file now (null before the server wrote it).</summary>
    public async Task<System.Text.Json.JsonDocument?> ReadStatusAsync(CancellationToken ct) =>
        File.Exists(StatusFile) ? System.Text.Json.JsonDocument.Parse(await File.ReadAllTextAsync(StatusFile, ct)) : null;

    /// <summary>Waits until the status file satisfies <paramref name="condition"/>; fails with the server's log after <paramref name="timeout"/>.</summary>
    public async Task WaitForStatusAsync(Func<System.Text.Json.JsonElement, bool> condition, string what, TimeSpan timeout, CancellationToken ct)
    {
        var watch = System.Diagnostics.Stopwatch.StartNew();
        while (watch.Elapsed < timeout)
        {
            using var status = await ReadStatusAsync(ct);
            if (status is not null && condition(status.RootElement))
            {
                return;
            }

            await Task.Delay(100, ct);
        }

        using var last = await ReadStatusAsync(ct);
        Assert.Fail($"not within {timeout.TotalSeconds} s: {what}\nstatus: {last?.RootElement}\n{string.Join('\n', ServerLog)}");
    }

    /// <summary>The server's log so far, parsed (when each thing happened, by event id).</summary>
    public List<LogLine> ParsedLog() => LogLine.ParseAll(ServerLog);

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
