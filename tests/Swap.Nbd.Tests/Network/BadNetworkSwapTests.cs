using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using NUnit.Framework;
using Swap.MemTest;
using Swap.Nbd.Tests.Support;

namespace Swap.Nbd.Tests.Network;

/// <summary>
/// This host swapping through the whole system on a bad network: out/swapnbd-server in a network lab's server
/// namespace, three out/swapnbd-daemon processes each behind a link of its own (scripts/netlab.sh), attached with
/// scripts/swap-attach.sh on the export's Unix socket (nbdfuse + loop device here), swapnbd-memtest in a cgroup v1
/// group a quarter of its size verifying every page. Lossy links, and a donor cut off for 10 s mid-run. The server
/// runs with its default timeouts; memtest's max_page_ms is the longest a page of the swapping process waited.
/// </summary>
[Category(Tier.Swap)]
public sealed partial class BadNetworkSwapTests
{
    private const long WorkingSet = 256L << 20;
    private const long Limit = WorkingSet / 4;
    private const long ExportSize = 1L << 30;
    private const long SlabSize = 32L << 20;
    private const int Touches = 8_000;
    private const int Priority = 32767; // the highest: no other swap area on the machine takes these pages

    private static readonly TimeSpan DaemonTimeout = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan Heartbeat = TimeSpan.FromSeconds(1);

    // A link with requests in flight is failed when the oldest outlives the daemon timeout (the watchdog looks every
    // quarter of the shorter of timeout and heartbeat); an idle one sends its heartbeat first. Plus a second for a
    // busy machine's scheduling.
    private static readonly TimeSpan DetectionBound = DaemonTimeout + Heartbeat + TimeSpan.FromSeconds(1);

    [Test, CancelAfter(420_000)]
    public async Task Half_a_percent_loss_on_every_donor_link_costs_no_page(CancellationToken ct)
    {
        await using var lab = await NetLab.UpAsync(3, ct);
        for (var k = 1; k <= lab.Donors; k++)
        {
            await lab.LossAsync(k, 0.5, LinkDirection.Both, ct);
        }

        var retransmitted = await lab.RetransmittedSegmentsAsync("srv", ct);
        var run = await RunAsync(lab, fault: null, ct);
        retransmitted = await lab.RetransmittedSegmentsAsync("srv", ct) - retransmitted;
        TestContext.Out.WriteLine($"TCP segments the server side retransmitted: {retransmitted}");

        Assert.Multiple(() =>
        {
            Assert.That(retransmitted, Is.GreaterThan(100), "the links really lost packets");
            Assert.That(run.DaemonsThatHeldData, Is.EqualTo(3), "every donor held pages through its lossy link:\n" + run.Report);
            Assert.That(run.Log.Where(l => l.EventId == EventIds.LinkDown), Is.Empty, "0.5 % loss never failed a link (TCP retransmits within the daemon timeout)");
        });
    }

    [Test, CancelAfter(420_000)]
    public async Task A_donor_cut_off_both_ways_for_10_s_mid_run_costs_no_page_and_takes_slabs_again_after_the_heal(CancellationToken ct)
    {
        await using var lab = await NetLab.UpAsync(3, ct);
        Partitions? partitions = null;
        var run = await RunAsync(lab, async (system, daemons, token) =>
        {
            // Mid-run: the busiest donor is cut off for 10 s. When it is back, has rejoined and served its probation,
            // the next busiest is cut off until its slabs have left it: they go to the donor that is back, which has the
            // most room (it was given nothing while away: its slabs were placed elsewhere, RELEASE_SLABS freed the old).
            var victim = daemons.MaxBy(d => d.Bytes)!;
            var second = daemons.Where(d => d != victim).MaxBy(d => d.Bytes)!;
            await lab.PartitionAsync(DonorNumber(victim.Name), LinkDirection.Both, token);
            var cut = DateTime.Now; // the rules are in place once the script returns
            await Task.Delay(TimeSpan.FromSeconds(10), token);
            var healed = DateTime.Now;
            await lab.HealAsync(DonorNumber(victim.Name), token);
            await system.WaitForStatusAsync(s => StatusDaemon.All(s).Single(d => d.Name == victim.Name).Up, "the donor rejoined", TimeSpan.FromSeconds(30), token);

            // It failed once, so it takes no new slabs for a while (probation, event 360): the second cut waits for that.
            LogLine? probation = null;
            for (var wait = Stopwatch.StartNew(); probation is null && wait.Elapsed < TimeSpan.FromSeconds(10); await Task.Delay(100, token))
            {
                probation = system.ParsedLog().LastOrDefault(l => l.EventId == EventIds.DaemonProbation && l.Message.Contains(victim.Name, StringComparison.Ordinal));
            }

            Assert.That(probation, Is.Not.Null, "the rejoined donor is on probation");
            await Task.Delay(TimeSpan.Parse(ProbationLength().Match(probation!.Message).Groups[1].Value, CultureInfo.InvariantCulture) + TimeSpan.FromSeconds(1), token);
            await lab.PartitionAsync(DonorNumber(second.Name), LinkDirection.Both, token);
            var secondCut = DateTime.Now;
            await system.WaitForStatusAsync(s => !StatusDaemon.All(s).Single(d => d.Name == second.Name).Up, "the second donor's link failed", TimeSpan.FromSeconds(30), token);
            await system.WaitForStatusAsync(s => StatusDaemon.All(s).Single(d => d.Name == victim.Name).Slabs > 0, "the donor that is back took slabs", TimeSpan.FromSeconds(30), token);
            await lab.HealAsync(DonorNumber(second.Name), token);
            await system.WaitForStatusAsync(s => StatusDaemon.All(s).All(d => d.Up), "every donor up at the end", TimeSpan.FromSeconds(30), token);
            partitions = new Partitions(victim, cut, healed, second, secondCut);
        }, ct);

        Assert.That(partitions, Is.Not.Null, "the donors were cut off while the workload swapped:\n" + run.Report);
        var (victim, cut, healed, second, secondCut) = partitions!;
        var log = run.Log;
        var down = log.FirstOrDefault(l => l.EventId == EventIds.LinkDown && l.Message.Contains(victim.Name, StringComparison.Ordinal) && l.After(cut) > TimeSpan.Zero);
        var unmapped = log.Where(l => l.EventId == EventIds.SlabUnmapped && l.Message.Contains($"from {victim.Name}:", StringComparison.Ordinal) && l.After(cut) > TimeSpan.Zero && l.After(healed) < TimeSpan.Zero).ToList();
        var slabs = unmapped.Select(l => SlabNumber().Match(l.Message).Groups[1].Value).ToHashSet();
        var placedElsewhere = log.Where(l => l.EventId == EventIds.SlabPlaced && l.After(cut) > TimeSpan.Zero && l.After(healed) < TimeSpan.Zero &&
            !l.Message.Contains(victim.Name, StringComparison.Ordinal) && slabs.Contains(SlabNumber().Match(l.Message).Groups[1].Value)).ToList();
        var rejoined = log.FirstOrDefault(l => l.EventId == EventIds.DaemonJoined && l.Message.Contains(victim.Name, StringComparison.Ordinal) && l.After(healed) > TimeSpan.Zero);
        var placedOnVictim = log.Count(l => l.EventId == EventIds.SlabPlaced && l.Message.Contains($"placed on {victim.Name} ", StringComparison.Ordinal) && l.After(healed) > TimeSpan.Zero);
        var secondDown = log.FirstOrDefault(l => l.EventId == EventIds.LinkDown && l.Message.Contains(second.Name, StringComparison.Ordinal) && l.After(secondCut) > TimeSpan.Zero);
        var report = $"donor {victim.Name} held {victim.Bytes >> 20} MiB; link down {down?.After(cut).TotalSeconds:F2} s after the cut; {unmapped.Count} slabs unmapped " +
            $"(last {unmapped.Select(l => l.After(cut).TotalSeconds).DefaultIfEmpty().Max():F2} s after the cut), {placedElsewhere.Count} of them placed elsewhere " +
            $"(last {placedElsewhere.Select(l => l.After(cut).TotalSeconds).DefaultIfEmpty().Max():F2} s after the cut); rejoined {rejoined?.After(healed).TotalSeconds:F2} s after the heal; " +
            $"took {placedOnVictim} slabs once {second.Name} was cut off (down {secondDown?.After(secondCut).TotalSeconds:F2} s after its cut); max_page_ms {run.MaxPageMs}";
        TestContext.Out.WriteLine(report);

        Assert.Multiple(() =>
        {
            Assert.That(down, Is.Not.Null, "the server failed the link it could not hear from\n" + run.Report);
            Assert.That(down?.After(cut), Is.LessThanOrEqualTo(DetectionBound), "found within the daemon timeout: " + report);
            Assert.That(unmapped, Is.Not.Empty, "its slabs went to the disk: " + report);
            Assert.That(unmapped.Select(l => l.After(cut)), Has.All.LessThanOrEqualTo(DetectionBound + TimeSpan.FromMilliseconds(500)), "at once: " + report);
            Assert.That(placedElsewhere.Select(l => SlabNumber().Match(l.Message).Groups[1].Value).ToHashSet(), Is.EquivalentTo(slabs),
                "each was placed again on another donor while it was cut off: " + report);
            Assert.That(rejoined, Is.Not.Null, "it rejoined after the heal: " + report);
            Assert.That(placedOnVictim, Is.GreaterThan(0), "and took slabs again: " + report);
            Assert.That(secondDown, Is.Not.Null, "the second cut failed that link too: " + report);
        });
    }

    private sealed record Partitions(StatusDaemon Victim, DateTime Cut, DateTime Healed, StatusDaemon Second, DateTime SecondCut);

    private sealed record RunResult(string Report, int DaemonsThatHeldData, double MaxPageMs, List<LogLine> Log);

    /// <summary>
    /// The swap workload through the lab; <paramref name="fault"/> starts (once) mid-run, when the fill has swapped out
    /// and touches swap pages back in, and must end before the result is checked. Every page must verify, with no swap
    /// or I/O error in the kernel log and no NBD error from the server.
    /// </summary>
    private static async Task<RunResult> RunAsync(NetLab lab, Func<SwapSystem, List<StatusDaemon>, CancellationToken, Task>? fault, CancellationToken ct)
    {
        var name = "test-" + Guid.NewGuid().ToString("N")[..8];
        var kernelLog = await KernelLog.MarkAsync(ct);
        await using var system = await SwapSystem.StartInLabAsync(lab, ExportSize, SlabSize, ct: ct);
        await system.WaitForStatusAsync(s => StatusDaemon.All(s).All(d => d.Up), "every daemon joined", TimeSpan.FromSeconds(30), ct);

        await using var swap = await SwapAttachment.AttachAsync(name, ["--socket", system.Socket, "--priority", Priority.ToString(CultureInfo.InvariantCulture)], ct);
        Assert.That(SwapAttachment.SwapsEntries().Where(e => e.Key != swap.Device && e.Value.Priority >= Priority), Is.Empty, "no other swap area competes for the pages");

        using var cgroup = MemoryCgroup.Create("swapnbd-" + name, Limit);
        var watch = Stopwatch.StartNew();
        var memtest = ExternalTool.RunAsync("sh", "dash", ["-c",
            $"echo $$ > {cgroup.Tasks} && exec {Repo.Path("out", "swapnbd-memtest")} --size {WorkingSet} --touches {Touches} --seed 43 --progress"],
            TimeSpan.FromMinutes(6), ct);

        var swapInsAtStart = SwapIns();
        long peakUsed = 0, peakRemote = 0;
        var heldData = new HashSet<string>();
        Task? faults = null;
        while (!memtest.IsCompleted || faults is { IsCompleted: false })
        {
            peakUsed = Math.Max(peakUsed, swap.SwapsEntry()?.Used ?? 0);
            using (var status = await system.ReadStatusAsync(ct))
            {
                if (status is not null)
                {
                    var daemons = StatusDaemon.All(status.RootElement);
                    var remote = daemons.Sum(d => d.Bytes);
                    peakRemote = Math.Max(peakRemote, remote);
                    heldData.UnionWith(daemons.Where(d => d.Bytes > 0).Select(d => d.Name));
                    if (fault is not null && faults is null && !memtest.IsCompleted && remote >= (WorkingSet - Limit) / 2 && SwapIns() - swapInsAtStart >= 2048)
                    {
                        TestContext.Out.WriteLine($"{watch.Elapsed.TotalSeconds:F1} s: faults start; {remote >> 20} MiB on daemons, {SwapIns() - swapInsAtStart} pages swapped in so far");
                        faults = fault(system, daemons, ct);
                    }
                }
            }

            await Task.WhenAny(memtest.IsCompleted ? faults! : memtest, Task.Delay(250, ct));
        }

        if (faults is not null)
        {
            await faults;
        }

        var result = await memtest;
        var elapsed = watch.Elapsed;
        using var final = await system.ReadStatusAsync(ct);
        var report = $"memtest: {result.Stdout.Trim()}\n{result.Stderr.Trim()}\n" +
            $"{elapsed.TotalSeconds:F1} s; peak swap used on {swap.Device}: {peakUsed >> 20} MiB; peak on daemons {peakRemote >> 20} MiB; " +
            $"daemons that held data: {string.Join(", ", heldData)}\nstatus:\n{final!.RootElement}";
        TestContext.Out.WriteLine(report);

        cgroup.Dispose();
        var detach = await swap.DetachAsync(ct);
        var kernel = await kernelLog.SinceMarkAsync(ct);
        var loop = Path.GetFileName(swap.Device);
        var kernelErrors = kernel.Where(l => l.Contains("swap-device", StringComparison.Ordinal) || (l.Contains("I/O error", StringComparison.Ordinal) && l.Contains(loop, StringComparison.Ordinal))).ToList();
        var maxPage = MaxPage().Match(result.Stdout);

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
            Assert.That(maxPage.Success, Is.True, "memtest reports its longest wait on a page");
        });

        return new RunResult(report, heldData.Count, double.Parse(maxPage.Groups[1].Value, CultureInfo.InvariantCulture), system.ParsedLog());
    }

    /// <summary>K of a lab donor named 198.18.K.2:PORT.</summary>
    private static int DonorNumber(string name) => int.Parse(name.Split('.')[2], CultureInfo.InvariantCulture);

    /// <summary>Pages swapped in since boot, all swap areas (/proc/vmstat pswpin).</summary>
    private static long SwapIns() => SwapTraffic.Read().In;

    // ServerLog.DeviceError: "Connection 3: Read at 4096+4096 failed: ..." is an NBD error reply the kernel would see as EIO.
    [GeneratedRegex(@"Connection \d+: \w+ at \d+\+\d+ failed")]
    private static partial Regex DeviceError();

    [GeneratedRegex(@" max_page_ms=([0-9.]+)")]
    private static partial Regex MaxPage();

    [GeneratedRegex(@" for (\d\d:\d\d:\d\d(?:\.\d+)?) ")]
    private static partial Regex ProbationLength();

    [GeneratedRegex(@"^Slab (\d+) ")]
    private static partial Regex SlabNumber();
}
