using System.Diagnostics;
using Swap.Nbd.Tests.Donor;
using Swap.Nbd.Tests.Faults;
using Swap.Donor;

namespace Swap.Nbd.Tests.Support;

/// <summary>A donor daemon for tests: in-process (fault points, fake MemAvailable) or a real swapnbd-daemon process.</summary>
internal sealed class TestDaemon : IAsyncDisposable
{
    private readonly bool _process;
    private readonly Action<DonorOptions>? _configure;
    private Process? _child;

    private TestDaemon(bool process, int port, Action<DonorOptions>? configure)
    {
        _process = process;
        Port = port;
        _configure = configure;
    }

    public int Port { get; }

    public string Name => $"127.0.0.1:{Port}";

    /// <summary>The swapnbd-daemon process id (null in-process, or while stopped).</summary>
    public int? Pid => _child?.Id;

    /// <summary>The in-process daemon (null for a process, or while stopped).</summary>
    public DonorDaemon? Daemon { get; private set; }

    /// <summary>What the in-process daemon reads as MemAvailable.</summary>
    public FakeMemory Memory { get; } = new();

    /// <summary>Fault injection over the in-process daemon's connections.</summary>
    public DonorFaultLayer Faults { get; } = new();

    public static async Task<TestDaemon> StartAsync(bool process, Action<DonorOptions>? configure = null)
    {
        var daemon = new TestDaemon(process, Loopback.FreePort(), configure);
        await daemon.StartAsync();
        return daemon;
    }

    public async Task StartAsync()
    {
        if (_process)
        {
            var info = new ProcessStartInfo(Repo.Path("out", "swapnbd-daemon"))
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            };
            foreach (var arg in new[] { "--listen", Name, "--max-memory", "1GiB", "--headroom", "64MiB", "--grace-period", "5", "--log-level", "Warning" })
            {
                info.ArgumentList.Add(arg);
            }

            _child = Process.Start(info) ?? throw new InvalidOperationException("cannot start out/swapnbd-daemon (run scripts/build.sh)");
            _child.OutputDataReceived += (_, _) => { };
            _child.ErrorDataReceived += (_, _) => { };
            _child.BeginOutputReadLine();
            _child.BeginErrorReadLine();
            await Loopback.WaitListeningAsync(Port, TimeSpan.FromSeconds(10), () => $"swapnbd-daemon did not listen on {Name}");
            return;
        }

        var options = new DonorOptions { Listen = Name, MaxMemory = 1L << 30, Headroom = 64L << 20, MonitorInterval = TimeSpan.FromMilliseconds(50), GracePeriod = TimeSpan.FromSeconds(5) };
        _configure?.Invoke(options);
        Daemon = new DonorDaemon(options, memory: Memory, transportLayer: Faults.Wrap);
        Daemon.Start();
    }

    /// <summary>SIGKILL for a process (<see cref="Process.Kill()"/> sends SIGKILL on Linux); an abrupt stop for an in-process daemon.</summary>
    public async Task KillAsync()
    {
        if (_child is not null)
        {
            _child.Kill();
            await _child.WaitForExitAsync();
            _child.Dispose();
            _child = null;
        }

        if (Daemon is not null)
        {
            await Daemon.StopAsync();
            Daemon = null;
        }
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
