using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using NUnit.Framework;

namespace Swap.Nbd.Tests.Support;

/// <summary>
/// A published executable (out/swapnbd-server, out/swapnbd-daemon) run as an operator runs it, optionally behind a
/// wrapper such as prlimit: its log lines, its /proc entries, and a SIGKILL on dispose.
/// </summary>
internal sealed class RunningExe : IDisposable
{
    private readonly Process _process;
    private readonly ConcurrentQueue<string> _lines = new();

    private RunningExe(Process process)
    {
        _process = process;
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) { _lines.Enqueue(e.Data); } };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) { _lines.Enqueue(e.Data); } };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    public int Pid => _process.Id;

    public string Log => string.Join('\n', _lines);

    /// <summary>Starts <paramref name="exe"/> (a file in out/) with <paramref name="args"/>, after <paramref name="wrapper"/> if any.</summary>
    public static RunningExe Start(string exe, IEnumerable<string> args, IEnumerable<string>? wrapper = null, IDictionary<string, string>? environment = null)
    {
        var path = Repo.Path("out", exe);
        Assert.That(File.Exists(path), Is.True, "run scripts/build.sh first (scripts/test.sh does)");
        var command = (wrapper ?? []).Concat([path]).Concat(args).ToList();
        var info = new ProcessStartInfo(command[0]) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in command.Skip(1))
        {
            info.ArgumentList.Add(argument);
        }

        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
        {
            info.Environment[key] = value;
        }

        return new RunningExe(Process.Start(info) ?? throw new InvalidOperationException($"cannot start {command[0]}"));
    }

    /// <summary>Waits until something accepts connections on loopback <paramref name="port"/>.</summary>
    public async Task WaitListeningAsync(int port, CancellationToken ct)
    {
        for (var i = 0; i < 400; i++)
        {
            Assert.That(_process.HasExited, Is.False, $"exited with {(_process.HasExited ? _process.ExitCode : 0)}:\n{Log}");
            using var probe = new Socket(SocketType.Stream, ProtocolType.Tcp);
            try
            {
                await probe.ConnectAsync(IPAddress.Loopback, port, ct);
                return;
            }
            catch (SocketException)
            {
                await Task.Delay(50, ct);
            }
        }

        Assert.Fail($"nothing listening on {port}:\n{Log}");
    }

    /// <summary>Waits until a log line contains <paramref name="text"/> (log lines lag the event they report).</summary>
    public async Task WaitForLogAsync(string text, CancellationToken ct)
    {
        for (var i = 0; i < 200 && !_lines.Any(l => l.Contains(text, StringComparison.Ordinal)); i++)
        {
            await Task.Delay(25, ct);
        }

        Assert.That(Log, Does.Contain(text));
    }

    /// <summary>A "Key: N kB" line of /proc/PID/status, in bytes.</summary>
    public long StatusBytes(string key)
    {
        foreach (var line in File.ReadLines($"/proc/{Pid}/status"))
        {
            if (line.StartsWith(key + ":", StringComparison.Ordinal))
            {
                var number = line[(key.Length + 1)..].Trim().Split(' ')[0];
                return long.Parse(number, CultureInfo.InvariantCulture) * 1024;
            }
        }

        throw new InvalidOperationException($"/proc/{Pid}/status has no {key}");
    }

    /// <summary>Waits for the process to end by itself; its exit code.</summary>
    public async Task<int> WaitForExitAsync(CancellationToken ct)
    {
        await _process.WaitForExitAsync(ct);
        _process.WaitForExit(); // drains the redirected output into Log
        return _process.ExitCode;
    }

    public int OomScoreAdj => int.Parse(File.ReadAllText($"/proc/{Pid}/oom_score_adj").Trim(), CultureInfo.InvariantCulture);

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            _process.Kill();
            _process.WaitForExit();
        }

        _process.Dispose();
    }

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>Whether this (the test) process holds <paramref name="capability"/> (a bit number, e.g. 24 for CAP_SYS_RESOURCE).</summary>
    public static bool HasCapability(int capability)
    {
        var line = File.ReadLines("/proc/self/status").First(l => l.StartsWith("CapEff:", StringComparison.Ordinal));
        var mask = ulong.Parse(line["CapEff:".Length..].Trim(), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
        return (mask & (1UL << capability)) != 0;
    }
}
