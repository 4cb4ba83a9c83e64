using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;
using NUnit.Framework;

namespace Swap.Nbd.Tests.Support;

/// <summary>
/// The one way tests start a process: a published executable (out/swapnbd-server, out/swapnbd-daemon, checked to be
/// current) run as an operator runs it, optionally behind a wrapper such as prlimit, or any other program. It keeps
/// everything the process prints (shown when the test fails), its /proc entries, and SIGKILLs it on dispose.
/// </summary>
internal sealed partial class RunningExe : IDisposable
{
    private readonly Process _process;
    private readonly string _title;
    private readonly ConcurrentQueue<string> _lines = new();
    private readonly StringBuilder _stdout = new();
    private readonly StringBuilder _stderr = new();

    private RunningExe(Process process, string title)
    {
        _process = process;
        _title = title;
        process.OutputDataReceived += (_, e) => Received(e.Data, _stdout);
        process.ErrorDataReceived += (_, e) => Received(e.Data, _stderr);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    public int Pid => _process.Id;

    public bool HasExited => _process.HasExited;

    /// <summary>Every line printed so far, stdout and stderr in the order they came.</summary>
    public string Log => string.Join('\n', _lines);

    public IReadOnlyCollection<string> Lines => _lines;

    /// <summary>Starts <paramref name="exe"/> (a file in out/) with <paramref name="args"/>, after <paramref name="wrapper"/> if any.</summary>
    public static RunningExe Start(string exe, IEnumerable<string> args, IEnumerable<string>? wrapper = null, IDictionary<string, string>? environment = null)
    {
        var command = (wrapper ?? []).Concat([OutBinary.Path(exe)]).Concat(args).ToList();
        return StartProgram(command[0], command.Skip(1), environment: environment);
    }

    /// <summary>Starts any program (a path, or a name found on PATH by the system); an out/ path is checked to be current.</summary>
    public static RunningExe StartProgram(string program, IEnumerable<string> args, string? workingDirectory = null,
        IDictionary<string, string>? environment = null, bool closeInput = false, IEnumerable<string>? removeEnvironment = null)
    {
        OutBinary.Check(program);
        var info = new ProcessStartInfo(program)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = closeInput,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? "",
        };
        foreach (var argument in args)
        {
            info.ArgumentList.Add(argument);
        }

        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
        {
            info.Environment[key] = value;
        }

        foreach (var key in removeEnvironment ?? [])
        {
            info.Environment.Remove(key);
        }

        var title = $"{Path.GetFileName(program)} {string.Join(' ', info.ArgumentList)}";
        var running = new RunningExe(Process.Start(info) ?? throw new InvalidOperationException($"cannot start {program}"), title);
        if (closeInput)
        {
            running._process.StandardInput.Close();
        }

        return running;
    }

    /// <summary>What it printed on stdout so far (lines, each ending in a newline).</summary>
    public string Stdout
    {
        get
        {
            lock (_stdout)
            {
                return _stdout.ToString();
            }
        }
    }

    /// <summary>What it printed on stderr so far (lines, each ending in a newline).</summary>
    public string Stderr
    {
        get
        {
            lock (_stderr)
            {
                return _stderr.ToString();
            }
        }
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

    /// <summary>Waits until something accepts connections on the Unix socket <paramref name="path"/>.</summary>
    public async Task WaitListeningAsync(string path, CancellationToken ct)
    {
        for (var i = 0; i < 400; i++)
        {
            Assert.That(_process.HasExited, Is.False, $"exited with {(_process.HasExited ? _process.ExitCode : 0)}:\n{Log}");
            using var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            try
            {
                await probe.ConnectAsync(new UnixDomainSocketEndPoint(path), ct);
                return;
            }
            catch (SocketException)
            {
                await Task.Delay(50, ct);
            }
        }

        Assert.Fail($"nothing listening on {path}:\n{Log}");
    }

    /// <summary>
    /// The port a process started with <c>--listen HOST:0</c> bound on <paramref name="host"/>, read from its
    /// "listening on HOST:PORT" line: for a process in a network namespace, where the test cannot look (a lab donor).
    /// </summary>
    public async Task<int> ListeningPortOnAsync(string host, CancellationToken ct)
    {
        var line = new Regex($@"[Ll]istening on {Regex.Escape(host)}:(\d+)");
        await WaitForLineAsync(l => line.IsMatch(l), TimeSpan.FromSeconds(20), ct);
        return int.Parse(line.Match(_lines.First(l => line.IsMatch(l))).Groups[1].Value, CultureInfo.InvariantCulture);
    }

    /// <summary>
    /// The loopback port a server started with <c>--listen 127.0.0.1:0</c> bound, read from its "Listening on
    /// 127.0.0.1:PORT" line: the process picks the port, so no other process can take it in between.
    /// </summary>
    public async Task<int> ListeningPortAsync(CancellationToken ct)
    {
        await WaitForLineAsync(l => ListeningLine().IsMatch(l), TimeSpan.FromSeconds(20), ct);
        return int.Parse(ListeningLine().Match(_lines.First(l => ListeningLine().IsMatch(l))).Groups[1].Value, CultureInfo.InvariantCulture);
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

    /// <summary>Waits until a line satisfies <paramref name="condition"/>; fails if the process ends or time runs out first.</summary>
    public async Task WaitForLineAsync(Func<string, bool> condition, TimeSpan timeout, CancellationToken ct)
    {
        var watch = Stopwatch.StartNew();
        while (!_lines.Any(condition))
        {
            if (_process.HasExited || watch.Elapsed > timeout)
            {
                // The lines may have come in just before it exited.
                if (_lines.Any(condition))
                {
                    return;
                }

                Assert.Fail($"{_title} never printed the line waited for:\n{Log}");
            }

            await Task.Delay(25, ct);
        }
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

    /// <summary>Waits up to <paramref name="timeout"/> for the process to end; kills it (and its children) and fails the test if it does not.</summary>
    public async Task<int> WaitForExitAsync(TimeSpan timeout, CancellationToken ct)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        cts.CancelAfter(timeout);
        try
        {
            return await WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync(CancellationToken.None);
            Assert.Fail($"{_title} did not finish within {timeout}\n{Log}");
            throw;
        }
    }

    public int OomScoreAdj => int.Parse(File.ReadAllText($"/proc/{Pid}/oom_score_adj").Trim(), CultureInfo.InvariantCulture);

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            _process.Kill();
            _process.WaitForExit();
        }

        ProcessOutputOnFailureAttribute.Keep(_title, Log);
        _process.Dispose();
    }

    /// <summary>
    /// A port that was free a moment ago. Racy (another process may take it before the server binds it): only for a
    /// port that must be known before the process starts; prefer <c>--listen 127.0.0.1:0</c> and <see cref="ListeningPortAsync"/>.
    /// </summary>
    public static int FreePort() => Loopback.FreePort();

    /// <summary>Whether this (the test) process holds <paramref name="capability"/> (a bit number, e.g. 24 for CAP_SYS_RESOURCE).</summary>
    public static bool HasCapability(int capability)
    {
        var line = File.ReadLines("/proc/self/status").First(l => l.StartsWith("CapEff:", StringComparison.Ordinal));
        var mask = ulong.Parse(line["CapEff:".Length..].Trim(), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
        return (mask & (1UL << capability)) != 0;
    }

    private void Received(string? line, StringBuilder stream)
    {
        if (line is null)
        {
            return;
        }

        lock (stream)
        {
            stream.Append(line).Append('\n');
        }

        _lines.Enqueue(line);
    }

    [GeneratedRegex(@"[Ll]istening on 127\.0\.0\.1:(\d+)")]
    private static partial Regex ListeningLine();
}
