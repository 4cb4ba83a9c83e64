using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using NUnit.Framework;
using Swap.Nbd.Client;
using Swap.Nbd.Tests.Support;

namespace Swap.Nbd.Tests.Network;

/// <summary>
/// The slab path on a bad network, checked byte for byte against the reference model: out/swapnbd-server in a network
/// lab's server namespace (scripts/netlab.sh), three out/swapnbd-daemon processes each behind a link of its own, the
/// client library on the export's Unix socket. One-way partitions, a flapping link, every donor cut off at once. The
/// server runs with its default timeouts (daemon timeout 2 s, heartbeat 1 s, connect timeout 2 s); each test reports
/// the longest request it saw, what a partition costs a client.
/// </summary>
[Category(Tier.Integration)]
public sealed class BadNetworkTests
{
    private const int Size = 64 << 20;
    private const long SlabSize = 4L << 20;
    private const int Slabs = (int)(Size / SlabSize);

    // 16 slabs, 7 a donor: three hold them all, two only 14, so while one donor is cut off some of its slabs wait on
    // the disk, and it takes them when it is back.
    private const int SlabsPerDonor = 7;

    private static readonly TimeSpan DaemonTimeout = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan Heartbeat = TimeSpan.FromSeconds(1);

    // A link with requests in flight is failed when the oldest outlives the daemon timeout (the watchdog looks every
    // quarter of the shorter of timeout and heartbeat); an idle one sends its heartbeat first. Plus a second for a
    // busy machine's scheduling.
    private static readonly TimeSpan DetectionBound = DaemonTimeout + Heartbeat + TimeSpan.FromSeconds(1);

    [TestCase(LinkDirection.ToDonor)]
    [TestCase(LinkDirection.FromDonor)]
    [CancelAfter(150_000)]
    public async Task A_donor_cut_off_one_way_for_10_s_costs_no_byte_and_takes_slabs_again_after_the_heal(LinkDirection direction, CancellationToken ct)
    {
        await using var lab = await NetLab.UpAsync(3, ct);
        await using var system = await SwapSystem.StartInLabAsync(lab, Size, SlabSize,
            extraDaemonArgs: ["--max-slabs-per-client", SlabsPerDonor.ToString(CultureInfo.InvariantCulture)], ct: ct);
        await using var pool = await NbdClientPool.ConnectAsync(NbdUri.Parse(system.UnixUri), 2, new NbdClientOptions(), ct);
        var workload = new ReferenceWorkload(Size, seed: 14, cache: false);
        await workload.FillAsync(pool, ct);
        await system.WaitForStatusAsync(AllRemote, "every slab placed on a donor and filled", TimeSpan.FromSeconds(60), ct);

        var victim = await BusiestAsync(system, ct);
        var k = DonorNumber(victim.Name);
        await lab.PartitionAsync(k, direction, ct);
        var cut = DateTime.Now; // the rules are in place once the script returns
        await RunForAsync(workload, pool, TimeSpan.FromSeconds(10), ct);
        var during = await DaemonsAsync(system, ct);

        var healed = DateTime.Now;
        await lab.HealAsync(k, ct);
        await RunUntilAsync(workload, pool, system, s => StatusDaemon.All(s).Single(d => d.Name == victim.Name) is { Up: true, Slabs: > 0 },
            "the donor rejoined and took slabs", TimeSpan.FromSeconds(40), ct);
        await system.WaitForStatusAsync(AllPlaced, "every slab on a donor again", TimeSpan.FromSeconds(30), ct);
        await workload.VerifyAllAsync(pool, ct);

        var log = system.ParsedLog();
        var down = log.FirstOrDefault(l => l.EventId == EventIds.LinkDown && l.Message.Contains(victim.Name, StringComparison.Ordinal) && l.After(cut) > TimeSpan.Zero);
        var unmapped = log.Where(l => l.EventId == EventIds.SlabUnmapped && l.Message.Contains($"from {victim.Name}:", StringComparison.Ordinal)).ToList();
        var placedElsewhere = log.Count(l => l.EventId == EventIds.SlabPlaced && l.After(cut) > TimeSpan.Zero && l.After(healed) < TimeSpan.Zero && !l.Message.Contains(victim.Name, StringComparison.Ordinal));
        var rejoined = log.FirstOrDefault(l => l.EventId == EventIds.DaemonJoined && l.Message.Contains(victim.Name, StringComparison.Ordinal) && l.After(healed) > TimeSpan.Zero);
        var placedOnVictim = log.Count(l => l.EventId == EventIds.SlabPlaced && l.Message.Contains($"placed on {victim.Name} ", StringComparison.Ordinal) && l.After(healed) > TimeSpan.Zero);
        var report = $"{direction}: donor {victim.Name} held {victim.Slabs} slabs; link down {down?.After(cut).TotalSeconds:F2} s after the cut ({down?.Message}); " +
            $"{unmapped.Count} slabs unmapped, {placedElsewhere} placed elsewhere while it was cut off; rejoined {rejoined?.After(healed).TotalSeconds:F2} s after the heal, " +
            $"then took {placedOnVictim} slabs; longest request {workload.LongestRequest.TotalMilliseconds:F0} ms; {workload.Operations} requests";
        TestContext.Out.WriteLine(report);

        Assert.Multiple(() =>
        {
            Assert.That(workload.Mismatches, Is.Zero, "every byte read back as the model says");
            Assert.That(down, Is.Not.Null, "the server failed the link it could not hear from\n" + report);
            Assert.That(down?.After(cut), Is.LessThanOrEqualTo(DetectionBound), "found within the daemon timeout");
            Assert.That(unmapped, Has.Count.EqualTo(victim.Slabs), "every slab it held went to the disk");
            Assert.That(unmapped.Select(l => l.After(cut)), Has.All.LessThanOrEqualTo(DetectionBound + TimeSpan.FromMilliseconds(500)), "at once");
            Assert.That(during.Single(d => d.Name == victim.Name), Is.EqualTo(victim with { Up = false, Slabs = 0, Bytes = 0 }), "cut off: down and holding nothing");

            // The others had room for all but two of its slabs (7 each of 16): those were placed again elsewhere, the
            // rest waited on the disk for a donor with room.
            Assert.That(placedElsewhere, Is.EqualTo(victim.Slabs - (Slabs - (2 * SlabsPerDonor))), "placed again on the other donors, as far as they had room");
            Assert.That(rejoined, Is.Not.Null, "the donor rejoined after the heal\n" + report);
            Assert.That(placedOnVictim, Is.EqualTo(Slabs - (2 * SlabsPerDonor)), "and took the slabs that waited");
            Assert.That(workload.LongestRequest, Is.LessThan(DetectionBound + TimeSpan.FromSeconds(1)), "no request waited much beyond the detection");
        });
    }

    /// <summary>
    /// A link down for a while in every 5 s: the issue's 1 s for a minute,
    /// which TCP rides out when its retransmission at 1.4 s gets through (a cut that lasts longer fails the link: the
    /// next comes at 3.1 s, after the daemon timeout), and 2.5 s for 20 s, which fails the link on every flap.
    /// </summary>
    [TestCase(1.0, 12)]
    [TestCase(2.5, 4)]
    [CancelAfter(180_000)]
    public async Task A_flapping_link_costs_no_byte_and_does_not_make_slabs_thrash(double downSeconds, int flaps, CancellationToken ct)
    {
        await using var lab = await NetLab.UpAsync(3, ct);
        await using var system = await SwapSystem.StartInLabAsync(lab, Size, SlabSize,
            extraDaemonArgs: ["--max-slabs-per-client", SlabsPerDonor.ToString(CultureInfo.InvariantCulture)], ct: ct);
        await using var pool = await NbdClientPool.ConnectAsync(NbdUri.Parse(system.UnixUri), 2, new NbdClientOptions(), ct);
        var workload = new ReferenceWorkload(Size, seed: 15, cache: false);
        await workload.FillAsync(pool, ct);
        await system.WaitForStatusAsync(AllRemote, "every slab placed on a donor and filled", TimeSpan.FromSeconds(60), ct);

        var victim = await BusiestAsync(system, ct);
        var k = DonorNumber(victim.Name);
        var start = DateTime.Now;
        var stop = 0;
        var load = Task.Run(async () =>
        {
            while (Volatile.Read(ref stop) == 0)
            {
                await workload.RunAsync(pool, 1, ct);
            }
        }, ct);

        // The link is cut from the moment netlab.sh partition returns until netlab.sh heal returns, so the heal starts
        // as much before the time is up as the last one took.
        var healTook = TimeSpan.FromMilliseconds(300);
        var outages = new List<TimeSpan>();
        for (var flap = 0; flap < flaps && !load.IsCompleted; flap++)
        {
            var period = Stopwatch.StartNew();
            await lab.PartitionAsync(k, LinkDirection.Both, ct);
            var down = Stopwatch.StartNew();
            await Task.Delay(Later(TimeSpan.FromSeconds(downSeconds) - healTook), ct);
            var heal = Stopwatch.StartNew();
            await lab.HealAsync(k, ct);
            healTook = heal.Elapsed;
            outages.Add(down.Elapsed);
            await Task.Delay(Later(TimeSpan.FromSeconds(5) - period.Elapsed), ct);
        }

        Volatile.Write(ref stop, 1);
        await load;
        await workload.VerifyAllAsync(pool, ct);

        var log = system.ParsedLog().Where(l => l.After(start) > TimeSpan.Zero).ToList();
        var downs = log.Count(l => l.EventId == EventIds.LinkDown);
        var moves = log.Count(l => l.EventId == EventIds.SlabUnmapped);
        var placements = log.Count(l => l.EventId == EventIds.SlabPlaced);
        var probations = log.Where(l => l.EventId == EventIds.DaemonProbation).Select(l => l.Message).ToList();
        var report = $"{flaps} flaps of {victim.Name} (held {victim.Slabs} slabs), down {outages.Min().TotalSeconds:F2}-{outages.Max().TotalSeconds:F2} s each: " +
            $"{downs} link downs, {moves} slabs unmapped (moves), {placements} placed; {probations.Count} probations ({string.Join("; ", probations.Select(p => p[(p.IndexOf("after", StringComparison.Ordinal))..]))}); " +
            $"longest request {workload.LongestRequest.TotalMilliseconds:F0} ms; {workload.Operations} requests";
        TestContext.Out.WriteLine(report);

        Assert.Multiple(() =>
        {
            Assert.That(workload.Mismatches, Is.Zero, "every byte read back as the model says");
            Assert.That(workload.Operations, Is.GreaterThan(1000), "the workload ran through the flapping");

            // A link that dies on a flap loses its slabs once; after that it is on probation, longer after every
            // failure, and takes none while it keeps failing. Without the probation it took the two slabs only it had
            // room for on every rejoin and lost them again at the next flap (26 moves in one run). A stay longer than
            // the longest probation (30 s) starts the count over, so within the minute those two may come back once.
            var bound = victim.Slabs + (2 * (Slabs - (2 * SlabsPerDonor)));
            Assert.That(moves, Is.LessThanOrEqualTo(bound), "slabs do not move back and forth: " + report);
            Assert.That(placements, Is.LessThanOrEqualTo(moves), "every placement re-placed a slab that had moved: " + report);
            Assert.That(downs <= 1 || probations.Count > 0, Is.True, "a link that failed again came back on probation: " + report);
            if (downSeconds > 2)
            {
                Assert.That(downs, Is.GreaterThanOrEqualTo(flaps / 2), "cuts longer than the daemon timeout failed the link: " + report);
            }
        });
    }

    [Test]
    [CancelAfter(150_000)]
    public async Task Every_donor_cut_off_the_device_runs_from_the_backup_disk_and_recovers_when_they_return(CancellationToken ct)
    {
        await using var lab = await NetLab.UpAsync(3, ct);
        await using var system = await SwapSystem.StartInLabAsync(lab, Size, SlabSize, ct: ct);
        await using var pool = await NbdClientPool.ConnectAsync(NbdUri.Parse(system.UnixUri), 2, new NbdClientOptions(), ct);
        var workload = new ReferenceWorkload(Size, seed: 16, cache: false);
        await workload.FillAsync(pool, ct);
        await system.WaitForStatusAsync(AllRemote, "every slab placed on a donor and filled", TimeSpan.FromSeconds(60), ct);

        var cut = new DateTime[lab.Donors + 1];
        for (var k = 1; k <= lab.Donors; k++)
        {
            await lab.PartitionAsync(k, LinkDirection.Both, ct);
            cut[k] = DateTime.Now;
        }

        await RunUntilAsync(workload, pool, system, s => StatusDaemon.All(s).All(d => !d.Up) && Slab(s, "slabsMapped") == 0,
            "every donor down, every slab on the disk", TimeSpan.FromSeconds(20), ct);
        var downs = system.ParsedLog().Where(l => l.EventId == EventIds.LinkDown)
            .Select(l => (K: DonorNumber(l.Message.Split(' ')[1]), Line: l)).Where(d => d.Line.After(cut[d.K]) > TimeSpan.Zero)
            .GroupBy(d => d.K).ToDictionary(g => g.Key, g => g.Min(d => d.Line.After(cut[d.K])));
        await RunForAsync(workload, pool, TimeSpan.FromSeconds(3), ct);
        await workload.VerifyAllAsync(pool, ct);
        var onDisk = workload.Mismatches;

        var healed = DateTime.Now;
        for (var k = 1; k <= lab.Donors; k++)
        {
            await lab.HealAsync(k, ct);
        }

        await RunUntilAsync(workload, pool, system, s => StatusDaemon.All(s).All(d => d.Up), "every donor back", TimeSpan.FromSeconds(40), ct);
        await system.WaitForStatusAsync(AllPlaced, "every slab on a donor again", TimeSpan.FromSeconds(60), ct);
        await RunForAsync(workload, pool, TimeSpan.FromSeconds(2), ct);
        await workload.VerifyAllAsync(pool, ct);

        var log = system.ParsedLog();
        var rejoined = log.Where(l => l.EventId == EventIds.DaemonJoined && l.After(healed) > TimeSpan.Zero).Select(l => l.After(healed)).ToList();
        var placedAgain = log.Count(l => l.EventId == EventIds.SlabPlaced && l.After(healed) > TimeSpan.Zero);
        var waited = log.Count(l => l.EventId == EventIds.SlabNotPlaced && l.After(cut[1]) > TimeSpan.Zero && l.Message.Contains("no daemon is up", StringComparison.Ordinal));
        var report = $"links down {string.Join(", ", downs.OrderBy(d => d.Key).Select(d => $"{d.Value.TotalSeconds:F2}"))} s after each cut; rejoined {string.Join(", ", rejoined.Select(t => $"{t.TotalSeconds:F2}"))} s after the heal; " +
            $"{placedAgain} slabs placed again; longest request {workload.LongestRequest.TotalMilliseconds:F0} ms; {workload.Operations} requests";
        TestContext.Out.WriteLine(report);

        Assert.Multiple(() =>
        {
            Assert.That(onDisk, Is.Zero, "from the backup disk alone, every byte as the model says");
            Assert.That(workload.Mismatches, Is.Zero, "and after the recovery");
            Assert.That(downs.Keys, Is.EquivalentTo(Enumerable.Range(1, lab.Donors)), "every link failed: " + report);
            Assert.That(downs.Values, Has.All.LessThanOrEqualTo(DetectionBound), "each within the daemon timeout: " + report);
            Assert.That(waited, Is.GreaterThan(0), "slabs waited on the disk while no donor was up");
            Assert.That(rejoined, Has.Count.EqualTo(lab.Donors), "every donor rejoined: " + report);
            Assert.That(placedAgain, Is.EqualTo(Slabs), "every slab placed on a donor again: " + report);
            Assert.That(workload.LongestRequest, Is.LessThan(DetectionBound + TimeSpan.FromSeconds(1)), "no request waited much beyond the detection");
        });
    }

    /// <summary>Every slab placed and filled, and every page written is on a donor (true after writes alone: a page the
    /// workload zeroed stays on the disk until written again, as sealed pages are not zeroed on the donor).</summary>
    private static bool AllRemote(JsonElement status) =>
        Slab(status, "slabsMapped") == Slab(status, "slabsTotal") && Slab(status, "bytesRemote") == Slab(status, "bytesWritten");

    private static TimeSpan Later(TimeSpan wait) => wait > TimeSpan.Zero ? wait : TimeSpan.Zero;

    /// <summary>Every slab placed on a donor and filled.</summary>
    private static bool AllPlaced(JsonElement status) =>
        Slab(status, "slabsMapped") == Slab(status, "slabsTotal") && Slab(status, "slabsActive") == Slab(status, "slabsTotal");

    private static long Slab(JsonElement status, string key) => status.GetProperty("slabs").GetProperty(key).GetInt64();

    private static async Task<List<StatusDaemon>> DaemonsAsync(SwapSystem system, CancellationToken ct)
    {
        using var status = await system.ReadStatusAsync(ct);
        return StatusDaemon.All(status!.RootElement);
    }

    /// <summary>The donor holding the most slabs (ties: the first).</summary>
    private static async Task<StatusDaemon> BusiestAsync(SwapSystem system, CancellationToken ct) => (await DaemonsAsync(system, ct)).MaxBy(d => d.Slabs)!;

    /// <summary>K of a lab donor named 198.18.K.2:PORT.</summary>
    private static int DonorNumber(string name) => int.Parse(name.Split('.')[2], CultureInfo.InvariantCulture);

    private static async Task RunForAsync(ReferenceWorkload workload, NbdClientPool pool, TimeSpan duration, CancellationToken ct)
    {
        var watch = Stopwatch.StartNew();
        while (watch.Elapsed < duration)
        {
            await workload.RunAsync(pool, 1, ct);
        }
    }

    private static async Task RunUntilAsync(ReferenceWorkload workload, NbdClientPool pool, SwapSystem system, Func<JsonElement, bool> condition, string what,
        TimeSpan timeout, CancellationToken ct)
    {
        var watch = Stopwatch.StartNew();
        while (watch.Elapsed < timeout)
        {
            await workload.RunAsync(pool, 1, ct);
            using var status = await system.ReadStatusAsync(ct);
            if (status is not null && condition(status.RootElement))
            {
                return;
            }
        }

        await system.WaitForStatusAsync(condition, what, TimeSpan.Zero, ct);
    }
}
