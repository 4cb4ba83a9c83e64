using System.Diagnostics;
using System.Globalization;
using NUnit.Framework;

namespace Swap.Nbd.Tests.Support;

/// <summary>
/// One run of <c>scripts/kernel/run-guest.sh</c> (Debian's kernel under qemu) whose guest output a test can watch
/// while it runs: run-guest.sh writes the guest script's lines to a file as the guest prints them (<c>--out</c>), so
/// the host can act at a point of the guest's workload.
/// </summary>
internal sealed class KernelGuest
{
    private readonly Task<(int ExitCode, string Output)> _run;
    private readonly Stopwatch _clock;

    private KernelGuest(Task<(int, string)> run, string outPath, string consolePath, Stopwatch clock)
    {
        _run = run;
        OutPath = outPath;
        ConsolePath = consolePath;
        _clock = clock;
    }

    /// <summary>The guest script's output as the guest writes it.</summary>
    public string OutPath { get; }

    /// <summary>The full console log: kernel messages and the script's output.</summary>
    public string ConsolePath { get; }

    /// <summary>Time since the guest was started.</summary>
    public TimeSpan Elapsed => _clock.Elapsed;

    public bool HasExited => _run.IsCompleted;

    /// <summary>Boots the guest with <paramref name="script"/> against the NBD server on 127.0.0.1:<paramref name="port"/>.</summary>
    /// <param name="port">The NBD server's port; null when the server runs in the guest (then <paramref name="extraArgs"/> holds --forward).</param>
    /// <param name="extraArgs">More run-guest.sh options (--forward, --disk, --file, --mem).</param>
    public static KernelGuest Start(string directory, int? port, string script, IEnumerable<string> env, TimeSpan timeout, CancellationToken ct,
        IEnumerable<string>? extraArgs = null)
    {
        var outPath = Path.Combine(directory, "guest.out");
        var consolePath = Path.Combine(directory, "console.log");
        var args = new List<string>
        {
            "--script", script,
            "--timeout", ((int)timeout.TotalSeconds).ToString(CultureInfo.InvariantCulture),
            "--log", consolePath, "--out", outPath,
        };
        if (port is { } p)
        {
            args.AddRange(["--port", p.ToString(CultureInfo.InvariantCulture)]);
        }

        args.AddRange(extraArgs ?? []);
        foreach (var kv in env)
        {
            args.AddRange(["--env", kv]);
        }

        var clock = Stopwatch.StartNew();
        // run-guest.sh enforces the timeout itself; the extra minute covers preparing the initramfs.
        var run = Repo.RunAsync(Repo.Path("scripts", "kernel", "run-guest.sh"), args, timeout + TimeSpan.FromMinutes(1), ct);
        return new KernelGuest(run, outPath, consolePath, clock);
    }

    /// <summary>The guest's lines so far (without the serial line's carriage returns).</summary>
    public IReadOnlyList<string> Lines()
    {
        if (!File.Exists(OutPath))
        {
            return [];
        }

        using var stream = new FileStream(OutPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        using var reader = new StreamReader(stream);
        var text = reader.ReadToEnd().Replace("\r", "", StringComparison.Ordinal);
        var lines = text.Split('\n');
        // The last piece is a line still being written unless the text ends with a newline.
        return lines[..^1];
    }

    /// <summary>Waits for the first guest line that matches; null if the guest ends without printing one.</summary>
    public async Task<string?> WaitForLineAsync(Func<string, bool> match, CancellationToken ct)
    {
        while (true)
        {
            var exited = _run.IsCompleted;
            var line = Lines().FirstOrDefault(match);
            if (line is not null || exited)
            {
                return line;
            }

            await Task.Delay(200, ct);
        }
    }

    /// <summary>Waits until run-guest.sh ends: its exit code (the guest script's), its output and the console log.</summary>
    public async Task<(int ExitCode, string Output, string Console)> WaitAsync(CancellationToken ct)
    {
        var (exit, output) = await _run.WaitAsync(ct);
        var console = File.Exists(ConsolePath) ? await File.ReadAllTextAsync(ConsolePath, ct) : "";
        TestContext.Out.WriteLine($"guest ran {Elapsed.TotalSeconds:F0} s, exit {exit}");
        return (exit, output, console.Replace("\r", "", StringComparison.Ordinal));
    }
}
