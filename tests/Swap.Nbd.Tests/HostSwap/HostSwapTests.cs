using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using NUnit.Framework;
using Swap.MemTest;
using Swap.Nbd.Tests.Support;

namespace Swap.Nbd.Tests.HostSwap;

/// <summary>
/// The device as swap on this host's own kernel: swapnbd-server in slab mode over three daemon processes and a backup
/// file, attached with scripts/swap-attach.sh (no nbd module here: nbdfuse + a direct-I/O loop device), a workload
/// four times its cgroup v1 memory limit (swapnbd-memtest) verifying every page, scripts/swap-detach.sh leaving
/// nothing behind. Root only; each run swaps a few hundred MiB through the server.
/// </summary>
[Category(Tier.Swap)]
public sealed partial class HostSwapTests
{
    // 512 MiB in a 128 MiB group: four times the limit, about 400 MiB through the device; a 1 GiB run took over four
    // minutes on two loaded cores, this about one. The touches are random single-page faults (latency bound).
    private const long WorkingSet = 512L << 20;
    private const long Limit = WorkingSet / 4;
    private const long ExportSize = 1L << 30;
    private const long SlabSize = 64L << 20;
    private const int Touches = 20_000;
    private const int Priority = 32767; // the highest: no other swap area on the machine takes these pages

    [Test, CancelAfter(420_000)]
    public async Task A_workload_four_times_its_memory_limit_swaps_through_three_daemons_and_verifies_every_page(CancellationToken ct)
    {
        var run = await RunAsync(killDaemon: false, ct);
        Assert.That(run.DaemonsThatHeldData, Is.EqualTo(3), "every daemon held pages:\n" + run.Report);
    }

    [Test, CancelAfter(420_000)]
    public async Task A_donor_daemon_killed_mid_run_costs_no_page_and_no_kernel_IO_error(CancellationToken ct)
    {
        var run = await RunAsync(killDaemon: true, ct);
        Assert.That(run.Victim, Is.Not.Null, "a daemon was killed while data was flowing:\n" + run.Report);
        Assert.That(run.ServerLog, Has.Some.Contains($"unmapped from {run.Victim}"), "the server dropped the dead daemon's slabs to the disk");
        Assert.That(run.FinalVictimUp, Is.False, "the status file shows the daemon down");
        Assert.That(run.FinalRemoteBytes, Is.GreaterThan(0), "the other daemons hold the pages now:\n" + run.Report);
    }

    private sealed record RunResult(string Report, int DaemonsThatHeldData, string? Victim, bool FinalVictimUp, long FinalRemoteBytes, IReadOnlyCollection<string> ServerLog);

    private static async Task<RunResult> RunAsync(bool killDaemon, CancellationToken ct)
    {
        var name = "test-" + Guid.NewGuid().ToString("N")[..8];
        var kernelLog = await KernelLog.MarkAsync(ct);
        await using var system = await SwapSystem.StartAsync(ExportSize, SlabSize, daemons: 3, ct: ct);
        await WaitForStatusAsync(system, s => Daemons(s).All(d => d.GetProperty("up").GetBoolean()), "every daemon joined", ct);

        await using var swap = await SwapAttachment.AttachAsync(name, ["--socket", system.Socket, "--priority", Priority.ToString(CultureInfo.InvariantCulture)], ct);
        Assert.That(swap.SwapsEntry()?.Priority, Is.EqualTo(Priority));
        Assert.That(SwapAttachment.SwapsEntries().Where(e => e.Key != swap.Device && e.Value.Priority >= Priority), Is.Empty, "no other swap area competes for the pages");

        using var cgroup = MemoryCgroup.Create("swapnbd-" + name, Limit);
        var watch = Stopwatch.StartNew();
        var memtest = ExternalTool.RunAsync("sh", "dash", ["-c",
            $"echo $$ > {cgroup.Tasks} && exec {Repo.Path("out", "swapnbd-memtest")} --size {WorkingSet} --touches {Touches} --seed 42 --progress"],
            TimeSpan.FromMinutes(6), ct);

        var swapInsAtStart = SwapIns();
        long peakUsed = 0, peakCgroupSwap = 0, peakRemote = 0;
        var heldData = new HashSet<string>();
        string? victim = null;
        while (!memtest.IsCompleted)
        {
            peakUsed = Math.Max(peakUsed, swap.SwapsEntry()?.Used ?? 0);
            long cgroupSwap = 0;
            try
            {
                cgroupSwap = cgroup.Stat("swap");
            }
            catch (IOException)
            {
            }

            peakCgroupSwap = Math.Max(peakCgroupSwap, cgroupSwap);
            using var status = await system.ReadStatusAsync(ct);
            if (status is not null)
            {
                var daemons = Daemons(status.RootElement);
                var remote = daemons.Sum(d => d.GetProperty("bytes").GetInt64());
                peakRemote = Math.Max(peakRemote, remote);
                heldData.UnionWith(daemons.Where(d => d.GetProperty("bytes").GetInt64() > 0).Select(d => d.GetProperty("name").GetString()!));

                // Mid-run: slabs placed, the fill swapped out, and the random touches swapping pages back in (reads
                // in flight, not only writes). Only our device is swap at this priority, so pswpin counts its reads.
                if (killDaemon && victim is null && remote >= (WorkingSet - Limit) / 2 && SwapIns() - swapInsAtStart >= 4096)
                {
                    var most = daemons.MaxBy(d => d.GetProperty("bytes").GetInt64());
                    victim = most.GetProperty("name").GetString()!;
                    var daemon = system.Daemons.Single(d => d.Name == victim);
                    TestContext.Out.WriteLine($"{watch.Elapsed.TotalSeconds:F1} s: SIGKILL daemon {victim} (pid {daemon.Pid}) holding {most.GetProperty("bytes").GetInt64() >> 20} MiB; " +
                        $"{remote >> 20} MiB on daemons, cgroup swap {cgroupSwap >> 20} MiB, {SwapIns() - swapInsAtStart} pages swapped in so far");
                    await daemon.KillAsync();
                }
            }

            await Task.WhenAny(memtest, Task.Delay(250, ct));
        }

        var result = await memtest;
        var elapsed = watch.Elapsed;
        using var final = await system.ReadStatusAsync(ct);
        var finalDaemons = Daemons(final!.RootElement);
        var report = $"memtest: {result.Stdout.Trim()}\n{result.Stderr.Trim()}\n" +
            $"{elapsed.TotalSeconds:F1} s; peak swap used on {swap.Device}: {peakUsed >> 20} MiB; cgroup swap peak {peakCgroupSwap >> 20} MiB; " +
            $"peak on daemons {peakRemote >> 20} MiB; daemons that held data: {string.Join(", ", heldData)}\nstatus:\n{final.RootElement}";
        TestContext.Out.WriteLine(report);

        // Teardown is part of the test: the workload's group goes first (its swapped pages are freed), then detach.
        cgroup.Dispose();
        var detach = await swap.DetachAsync(ct);
        var kernel = await kernelLog.SinceMarkAsync(ct);
        var loop = Path.GetFileName(swap.Device);
        var kernelErrors = kernel.Where(l => l.Contains("swap-device", StringComparison.Ordinal) || (l.Contains("I/O error", StringComparison.Ordinal) && l.Contains(loop, StringComparison.Ordinal))).ToList();

        Assert.Multiple(() =>
        {
            Assert.That(result.ExitCode, Is.Zero, "swapnbd-memtest found bad pages or failed\n" + report);
            Assert.That(result.Stdout, Does.Contain($"PASS pages={WorkingSet / 4096} ").And.Contain(" mismatches=0 "), "every page verified");
            Assert.That(peakUsed, Is.GreaterThanOrEqualTo((WorkingSet - Limit) / 2), "the workload's pages went to our swap device");
            Assert.That(peakRemote, Is.GreaterThanOrEqualTo(SlabSize), "the daemons held the swapped pages");
            Assert.That(kernelErrors, Is.Empty, "the kernel saw no swap or I/O error on the device");
            Assert.That(system.ServerLog.Where(l => DeviceError().IsMatch(l)), Is.Empty, "the server never answered an NBD request with an error");
            Assert.That(detach.ExitCode, Is.Zero, detach.ToString());
            Assert.That(swap.Leftovers(), Is.Empty, "swap-detach.sh left nothing behind");
            Assert.That(Directory.Exists(cgroup.Path), Is.False, "the cgroup is gone");
        });

        var victimEntry = victim is null ? (JsonElement?)null : finalDaemons.Single(d => d.GetProperty("name").GetString() == victim);
        return new RunResult(report, heldData.Count, victim, victimEntry?.GetProperty("up").GetBoolean() ?? true,
            finalDaemons.Sum(d => d.GetProperty("bytes").GetInt64()), system.ServerLog);
    }

    /// <summary>Pages swapped in since boot, all swap areas (/proc/vmstat pswpin).</summary>
    private static long SwapIns() => SwapTraffic.Read().In;

    private static List<JsonElement> Daemons(JsonElement status) => [.. status.GetProperty("slabs").GetProperty("daemons").EnumerateArray()];

    private static async Task WaitForStatusAsync(SwapSystem system, Func<JsonElement, bool> condition, string what, CancellationToken ct)
    {
        for (var i = 0; i < 300; i++)
        {
            using var status = await system.ReadStatusAsync(ct);
            if (status is not null && condition(status.RootElement))
            {
                return;
            }

            await Task.Delay(100, ct);
        }

        Assert.Fail($"not within 30 s: {what}\n{string.Join('\n', system.ServerLog)}");
    }

    // ServerLog.DeviceError: "Connection 3: Read at 4096+4096 failed: ..." is an NBD error reply the kernel would see as EIO.
    [GeneratedRegex(@"Connection \d+: \w+ at \d+\+\d+ failed")]
    private static partial Regex DeviceError();
}
