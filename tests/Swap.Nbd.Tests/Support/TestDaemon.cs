using System.Net;
using Swap.Donor;
using Swap.Nbd.Tests.Donor;
using Swap.Nbd.Tests.Faults;

namespace Swap.Nbd.Tests.Support;

/// <summary>
/// A donor daemon for the slab-path tests: in-process (a fault layer, fake MemAvailable) or a real swapnbd-daemon
/// process (output kept, shown when a test fails). The first start binds port 0 and reads the port back; a restart
/// after <see cref="KillAsync"/> takes the same port again, since the server's portal names the daemon by it.
/// </summary>
internal sealed class TestDaemon : IAsyncDisposable
{
    private readonly bool _process;
    private readonly Action<DonorOptions>? _configure;
    private readonly IReadOnlyList<string> _authArgs;
    private readonly string _host = "127.0.0.1";
    private readonly IReadOnlyList<string>? _wrapper;
    private readonly IReadOnlyList<string> _extraArgs = [];
    private RunningExe? _child;

    private TestDaemon(bool process, Action<DonorOptions>? configure, IReadOnlyList<string>? authArgs)
    {
        _process = process;
        _configure = configure;
        _authArgs = authArgs ?? ["--auth-key-file", TestKeys.File];
    }

    private TestDaemon(string host, bool process)
        : this(process, configure: null, authArgs: null)
    {
        _host = host;
    }

    private TestDaemon(string host, IReadOnlyList<string> wrapper, IReadOnlyList<string> extraArgs)
        : this(process: true, configure: null, authArgs: null)
    {
        _host = host;
        _wrapper = wrapper;
        _extraArgs = extraArgs;
    }

    /// <summary>The port the daemon listens on (0 before the first start).</summary>
    public int Port { get; private set; }

    /// <summary>HOST:PORT as the server's portal names it (127.0.0.1, or the donor's address in a network lab).</summary>
    public string Name => $"{_host}:{Port}";

    /// <summary>The swapnbd-daemon process id (null in-process, or while stopped).</summary>
    public int? Pid => _child?.Pid;

    /// <summary>What the daemon process has written so far (empty in-process).</summary>
    public string Output => _child?.Log ?? "";

    /// <summary>The in-process daemon (null for a process, or while stopped).</summary>
    public DonorDaemon? Daemon { get; private set; }

    /// <summary>What the in-process daemon reads as MemAvailable.</summary>
    public FakeMemory Memory { get; } = new();

    /// <summary>Fault injection over the in-process daemon's connections.</summary>
    public DonorFaultLayer Faults { get; } = new();

    /// <param name="configure">Changes the in-process daemon's options (which hold the run's key file at first).</param>
    /// <param name="authArgs">The process's key arguments; the run's key file unless given (e.g. --insecure-no-auth).</param>
    public static async Task<TestDaemon> StartAsync(bool process, Action<DonorOptions>? configure = null, IReadOnlyList<string>? authArgs = null)
    {
        var daemon = new TestDaemon(process, configure, authArgs);
        await daemon.StartAsync();
        return daemon;
    }

    /// <summary>
    /// A swapnbd-daemon process that runs behind <paramref name="wrapper"/> (a network lab's namespace:
    /// <see cref="NetLab.Wrapper"/>) and listens on <paramref name="host"/>, with <paramref name="extraArgs"/> after the usual ones.
    /// </summary>
    public static async Task<TestDaemon> StartProcessAsync(string host, IReadOnlyList<string> wrapper, IReadOnlyList<string>? extraArgs = null)
    {
        var daemon = new TestDaemon(host, wrapper, extraArgs ?? []);
        await daemon.StartAsync();
        return daemon;
    }

    /// <summary>
    /// An in-process daemon on <paramref name="host"/> (any 127.0.0.x is loopback) and <paramref name="port"/> (0: its
    /// own choice): daemons of a DNS portal share one port at several addresses.
    /// </summary>
    public static async Task<TestDaemon> StartAtAsync(string host, int port = 0)
    {
        var daemon = new TestDaemon(host, process: false) { Port = port };
        await daemon.StartAsync();
        return daemon;
    }

    /// <summary>Starts the daemon: on a port of its own choosing the first time, on the same port after a kill.</summary>
    public async Task StartAsync()
    {
        var listen = $"{_host}:{Port}";
        if (_process)
        {
            _child = RunningExe.Start("swapnbd-daemon",
                ["--listen", listen, "--max-memory", "1GiB", "--headroom", "64MiB", "--grace-period", "5", "--log-level", "Information", .. _authArgs, .. _extraArgs],
                _wrapper);
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            Port = await _child.ListeningPortOnAsync(_host, timeout.Token);
            return;
        }

        var options = new DonorOptions
        {
            Listen = listen, AuthKeyFile = TestKeys.File, MaxMemory = 1L << 30, Headroom = 64L << 20,
            MonitorInterval = TimeSpan.FromMilliseconds(50), GracePeriod = TimeSpan.FromSeconds(5),
        };
        _configure?.Invoke(options);
        Daemon = new DonorDaemon(options, memory: Memory, transportLayer: Faults.Wrap);
        Daemon.Start();
        Port = ((IPEndPoint)Daemon.EndPoints[0]).Port;
    }

    /// <summary>SIGKILL for a process; an abrupt stop for an in-process daemon.</summary>
    public async Task KillAsync()
    {
        if (_child is not null)
        {
            _child.Dispose(); // SIGKILL and reap
            _child = null;
        }

        if (Daemon is not null)
        {
            await Daemon.StopAsync();
            Daemon = null;
        }
    }

    /// <summary>Open connections of the in-process daemon once it has seen every closed one go (up to 5 s).</summary>
    public async Task<int> SettledConnectionsAsync(int expected, CancellationToken ct)
    {
        for (var i = 0; i < 100 && Daemon!.ConnectionCount != expected; i++)
        {
            await Task.Delay(50, ct);
        }

        return Daemon!.ConnectionCount;
    }

    public async ValueTask DisposeAsync() => await KillAsync();

    /// <summary>The daemon process's resident memory (VmRSS), which grows as it takes pages.</summary>
    public long ResidentBytes()
    {
        var pid = Pid ?? throw new InvalidOperationException("only a running daemon process has a resident size");
        foreach (var line in File.ReadLines($"/proc/{pid}/status"))
        {
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
            {
                // "VmRSS:     123456 kB"
                return long.Parse(line.AsSpan(6).Trim().TrimEnd("kB").Trim(), System.Globalization.CultureInfo.InvariantCulture) << 10;
            }
        }

        throw new InvalidOperationException($"no VmRSS in /proc/{pid}/status");
    }
}
