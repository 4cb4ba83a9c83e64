using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.RegularExpressions;
using NUnit.Framework;
using Swap.Nbd.Tests.Support;

namespace Swap.Nbd.Tests.HostSwap;

/// <summary>
/// scripts/demo.sh end to end, as README's main command runs it (with --no-build: scripts/test.sh has just built out/,
/// and the setup step is what test.sh itself runs): a full run, and a Ctrl-C in the middle of it.
/// </summary>
[Category(Tier.Swap)]
public sealed partial class DemoTests
{
    [TestCase("demo.sh", "1.5G", "demo: '1.5G' is not a size")]
    [TestCase("demo.sh", "lots", "demo: 'lots' is not a size")]
    [TestCase("demo.sh", "8MiB", "demo: --size must be at least 16MiB")]
    [TestCase("bench-swap.sh", "1.5G", "bench-swap: --size '1.5G' must be at least 16MiB, in whole 4KiB pages")]
    [TestCase("bench-swap.sh", "12x", "bench-swap: --size '12x' must be at least 16MiB, in whole 4KiB pages")]
    [CancelAfter(30_000)]
    public async Task A_bad_size_is_refused_by_name_before_anything_starts(string script, string size, string message, CancellationToken ct)
    {
        var (exit, output) = await Repo.RunAsync(Repo.Path("scripts", script), ["--size", size, "--no-build"], TimeSpan.FromSeconds(20), ct);
        Assert.That(exit, Is.EqualTo(2), output);
        Assert.That(output, Does.Contain(message));
    }

    [TestCase("512MiB")]
    [TestCase("2000MiB")]
    [TestCase("lots")]
    [CancelAfter(30_000)]
    public async Task A_bad_export_size_is_refused_by_name_before_anything_starts(string exportSize, CancellationToken ct)
    {
        var (exit, output) = await Repo.RunAsync(Repo.Path("scripts", "bench-swap.sh"), ["--export-size", exportSize, "--no-build"], TimeSpan.FromSeconds(20), ct);
        Assert.That(exit, Is.EqualTo(2), output);
        Assert.That(output, Does.Contain($"bench-swap: --export-size '{exportSize}' must be a whole number of 64MiB slabs, at least --size (1GiB)"));
    }

    [Test, CancelAfter(300_000)]
    public async Task The_demo_swaps_a_workload_through_three_daemons_says_where_the_pages_went_and_leaves_nothing(CancellationToken ct)
    {
        using var demo = Demo.Start(["--size", "512MiB", "--touches", "20000"]);
        var exit = await demo.WaitAsync(TimeSpan.FromMinutes(4), ct);
        var output = demo.Output;
        TestContext.Out.WriteLine(output);

        Assert.That(exit, Is.Zero, output);
        Assert.That(output, Does.Contain("swapnbd-memtest: PASS pages=131072 size=512MiB touches=20000 mismatches=0"));
        Assert.That(output, Does.Contain("== where the pages went"));
        var daemons = DaemonLine().Matches(output).Select(m => double.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture)).ToList();
        Assert.That(daemons, Has.Count.EqualTo(3), "one line per daemon");
        Assert.That(daemons.Count(mib => mib > 0), Is.GreaterThanOrEqualTo(2), "the pages went to more than one daemon");
        Assert.That(output, Does.Match(@"backup disk \S+: +\d+\.\d MiB \(a copy of every page written\)"));
        Assert.That(output, Does.Match(@"the workload took \d+\.\d s"));
        Assert.That(output, Does.Contain("swapoff /dev/"));
        Assert.That(output, Does.Contain("demo: torn down"));
        Assert.That(demo.Leftovers(), Is.Empty);
    }

    [Test, CancelAfter(180_000)]
    public async Task Ctrl_C_in_the_middle_tears_everything_down_in_order(CancellationToken ct)
    {
        using var demo = Demo.Start(["--size", "256MiB", "--touches", "200000"]);
        await demo.WaitForLineAsync(l => l.Contains("swapped out on /dev/", StringComparison.Ordinal), TimeSpan.FromMinutes(2), ct);

        // What a terminal does on Ctrl-C: SIGINT to the foreground process group (the demo runs as its leader).
        var kill = await ExternalTool.RunAsync("kill", "procps", ["-INT", "--", "-" + demo.Pid], TimeSpan.FromSeconds(10), ct);
        Assert.That(kill.ExitCode, Is.Zero, kill.ToString());
        var exit = await demo.WaitAsync(TimeSpan.FromMinutes(1), ct);
        var output = demo.Output;
        TestContext.Out.WriteLine(output);

        Assert.That(exit, Is.EqualTo(130), output);
        Assert.That(output, Does.Contain("demo: interrupted"));
        Assert.That(output, Does.Not.Contain("swapnbd-memtest: PASS"), "the workload was cut short, not finished");
        var swapoff = output.IndexOf("swap-detach: swapoff /dev/", StringComparison.Ordinal);
        var unmount = output.IndexOf("swap-detach: unmounted", StringComparison.Ordinal);
        Assert.That(swapoff, Is.GreaterThanOrEqualTo(0), "swapoff ran");
        Assert.That(unmount, Is.GreaterThan(swapoff), "the device went away only after swapoff");
        Assert.That(output, Does.Contain("demo: torn down"));
        Assert.That(demo.Leftovers(), Is.Empty);
    }

    [GeneratedRegex(@"daemon 127\.0\.0\.1:\d+ +up +\d+ slabs +(\d+\.\d) MiB")]
    private static partial Regex DaemonLine();

    /// <summary>One run of scripts/demo.sh in a process group of its own, with SIGINT at its default (a test runner started in the background may have inherited it ignored).</summary>
    private sealed class Demo : IDisposable
    {
        private readonly Process _process;
        private readonly ConcurrentQueue<string> _lines = new();

        private Demo(Process process)
        {
            _process = process;
            _process.OutputDataReceived += (_, e) => { if (e.Data is not null) { _lines.Enqueue(e.Data); } };
            _process.ErrorDataReceived += (_, e) => { if (e.Data is not null) { _lines.Enqueue(e.Data); } };
            _process.BeginOutputReadLine();
            _process.BeginErrorReadLine();
        }

        public int Pid => _process.Id;

        public string Output => string.Join('\n', _lines);

        public static Demo Start(IEnumerable<string> args)
        {
            var info = new ProcessStartInfo("python3") { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = Repo.Root };
            foreach (var arg in new[]
            {
                "-c", "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.setsid(); os.execv(sys.argv[1], sys.argv[1:])",
                Repo.Path("scripts", "demo.sh"), "--no-build",
            }.Concat(args))
            {
                info.ArgumentList.Add(arg);
            }

            return new Demo(Process.Start(info) ?? throw new InvalidOperationException("cannot start python3 (apt-get install python3)"));
        }

        public async Task<int> WaitAsync(TimeSpan timeout, CancellationToken ct)
        {
            using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
            cts.CancelAfter(timeout);
            try
            {
                await _process.WaitForExitAsync(cts.Token);
            }
            catch (OperationCanceledException)
            {
                Assert.Fail($"demo.sh did not finish within {timeout}:\n{Output}");
            }

            _process.WaitForExit(); // drains the output readers
            return _process.ExitCode;
        }

        public async Task WaitForLineAsync(Func<string, bool> condition, TimeSpan timeout, CancellationToken ct)
        {
            var watch = Stopwatch.StartNew();
            while (!_lines.Any(condition))
            {
                if (_process.HasExited || watch.Elapsed > timeout)
                {
                    Assert.Fail($"demo.sh never printed the line waited for:\n{Output}");
                }

                await Task.Delay(200, ct);
            }
        }

        /// <summary>Anything of this demo run still on the machine (its swap attachment, cgroup, processes).</summary>
        public List<string> Leftovers()
        {
            var name = "demo-" + Pid;
            var left = SwapAttachment.LeftoversOf(name, null).ToList();
            // The demo makes its group inside its own v1 memory cgroup (the test's), or under the v2 root.
            foreach (var group in new[] { Path.Combine(MemoryCgroup.OwnPath(), "swapnbd-" + name), "/sys/fs/cgroup/swapnbd-" + name })
            {
                if (Directory.Exists(group))
                {
                    left.Add($"cgroup {group} remains");
                }
            }

            var work = Regex.Match(Output, @"/tmp/swapnbd-demo\.\w+").Value;
            if (work.Length > 0)
            {
                if (Directory.Exists(work))
                {
                    left.Add($"{work} remains");
                }

                foreach (var proc in Directory.GetDirectories("/proc").Where(d => char.IsAsciiDigit(Path.GetFileName(d)[0])))
                {
                    try
                    {
                        var cmdline = File.ReadAllText(Path.Combine(proc, "cmdline")).Replace('\0', ' ');
                        if (cmdline.Contains(work, StringComparison.Ordinal))
                        {
                            left.Add($"process {Path.GetFileName(proc)} still runs: {cmdline}");
                        }
                    }
                    catch (IOException)
                    {
                    }
                }
            }
            else
            {
                left.Add("the demo never named its work directory");
            }

            return left;
        }

        public void Dispose()
        {
            // A test that gave up early: Ctrl-C lets the demo tear down in order (swapoff before the server goes);
            // SIGKILL only if that does not end it.
            if (!_process.HasExited)
            {
                using (var interrupt = Process.Start("kill", ["-INT", "--", "-" + Pid]))
                {
                    interrupt.WaitForExit();
                }

                if (!_process.WaitForExit(TimeSpan.FromSeconds(90)))
                {
                    _process.Kill(entireProcessTree: true);
                    _process.WaitForExit();
                }
            }

            _process.Dispose();
        }
    }
}
