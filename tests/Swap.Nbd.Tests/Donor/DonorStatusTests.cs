using System.Globalization;
using System.Text.Json;
using Microsoft.Extensions.Time.Testing;
using NUnit.Framework;
using Swap.Daemon.Protocol;
using Swap.Donor.Status;
using Swap.Nbd.Tests.Support;

namespace Swap.Nbd.Tests.Donor;

/// <summary>
/// swapnbd-daemon --status-file and `swapnbd-daemon status`: the published daemon with a client placing slabs on it,
/// the file and the view following the client, "stopped" after SIGTERM; an in-process daemon on a fake clock for the
/// rewrite interval, MemAvailable, evictions, refused handshakes, a stale file and --watch.
/// </summary>
[Category(Tier.Integration)]
public sealed class DonorStatusTests
{
    private const ulong Slab = TestDonor.Slab;
    private const ulong ClientId = 0x77;
    private const string ClientHex = "0000000000000077";

    private string _directory = "";

    private string StatusPath => Path.Combine(_directory, "daemon-status.json");

    [SetUp]
    public void SetUp() => _directory = Directory.CreateTempSubdirectory("swapnbd-dstatus-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(_directory, recursive: true);

    [Test, CancelAfter(60_000)]
    public async Task The_daemon_exe_reports_a_clients_slabs_as_they_move_and_stopped_after_sigterm(CancellationToken ct)
    {
        using var daemon = RunningExe.Start("swapnbd-daemon",
            ["--listen", "127.0.0.1:0", "--max-memory", "64MiB", "--headroom", "0", "--auth-key-file", TestKeys.File, "--status-file", StatusPath]);
        var port = await daemon.ListeningPortAsync(ct);
        await using (var client = await DonorTestClient.ConnectAsync(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, port), ct))
        {
            Assert.That(await client.HelloAsync(ClientId, ct), Is.EqualTo(DaemonStatus.Ok));
            var first = await client.AllocOkAsync(Slab, ct);
            Assert.That(await client.WriteAsync(first, 0, DonorTestClient.Pattern(64 * 1024, 1), ct), Is.EqualTo(DaemonStatus.Ok));
            var status = await WaitForFileAsync(s => s.Clients.Any(c => c.BytesCommitted == 64 * 1024), ct);
            Assert.That(status.State, Is.EqualTo("running"));
            Assert.That(status.Listen, Is.EqualTo(new[] { $"127.0.0.1:{port}" }));
            Assert.That(status.MaxMemory, Is.EqualTo(64L << 20));
            Assert.That(status.MemAvailable, Is.GreaterThan(0), "read from /proc/meminfo");
            Assert.That(status.Clients, Is.EqualTo(new[] { new DonorClientStatus(ClientHex, 1, (long)Slab, 64 * 1024, 1, false) }));
            Assert.That(status.Requests.Single(r => r.Opcode == "write"), Is.EqualTo(new DonorRequestStatus("write", 1, 64 * 1024)));

            // A second slab and more pages: the next rewrites follow.
            var second = await client.AllocOkAsync(Slab, ct);
            Assert.That(await client.WriteAsync(second, 0, DonorTestClient.Pattern(128 * 1024, 2), ct), Is.EqualTo(DaemonStatus.Ok));
            status = await WaitForFileAsync(s => s.Clients.Any(c => c.BytesCommitted == 192 * 1024), ct);
            Assert.That((status.Slabs, status.BytesLent, status.BytesCommitted), Is.EqualTo((2, 2 * (long)Slab, 192L * 1024)));
            Assert.That(status.Clients.Single().Slabs, Is.EqualTo(2));

            var (jsonExit, json) = await Repo.RunAsync(OutBinary.Path("swapnbd-daemon"), ["status", "--status-file", StatusPath, "--json"], TimeSpan.FromSeconds(20), ct);
            Assert.That(jsonExit, Is.Zero, json);
            using (var parsed = JsonDocument.Parse(json))
            {
                var row = parsed.RootElement.GetProperty("clients")[0];
                Assert.That(row.GetProperty("client").GetString(), Is.EqualTo(ClientHex));
                Assert.That(row.GetProperty("slabs").GetInt32(), Is.EqualTo(2));
            }

            var (tableExit, table) = await Repo.RunAsync(OutBinary.Path("swapnbd-daemon"), ["status", "--status-file", StatusPath], TimeSpan.FromSeconds(20), ct);
            TestContext.Out.WriteLine(table);
            Assert.That(tableExit, Is.Zero, table);
            Assert.That(table, Does.Contain($"swapnbd-daemon pid {daemon.Pid}: running on 127.0.0.1:{port}, 1 connection"));
            Assert.That(table, Does.Contain("lent 2 MiB of at most 64 MiB in 2 slabs, 192 KiB of it committed"));
            Assert.That(table, Does.Match($@"{ClientHex}\s+2\s+2 MiB\s+192 KiB\s+1\n"), "a row per client");
            Assert.That(table, Does.Match(@"requests: .*write 2 \(192 KiB\)"));

            Assert.That((await Repo.RunAsync("kill", ["-TERM", daemon.Pid.ToString(CultureInfo.InvariantCulture)], TimeSpan.FromSeconds(5), ct)).ExitCode, Is.Zero);
            Assert.That(await daemon.WaitForExitAsync(TimeSpan.FromSeconds(20), ct), Is.Zero);
        }

        var last = Read(File.ReadAllText(StatusPath));
        Assert.That(last.State, Is.EqualTo("stopped"));
        Assert.That((last.Slabs, last.Connections, last.Clients.Count), Is.EqualTo((0, 0, 0)), "written once every slab was freed");
        var (exit, stopped) = await Repo.RunAsync(OutBinary.Path("swapnbd-daemon"), ["status", "--status-file", StatusPath], TimeSpan.FromSeconds(20), ct);
        Assert.That(exit, Is.Zero, "a stopped daemon's file is not stale");
        Assert.That(stopped, Does.Contain(": stopped on "));
    }

    [Test, CancelAfter(20_000)]
    public async Task The_file_is_rewritten_every_second_of_the_injected_clock_with_memory_evictions_and_refusals(CancellationToken ct)
    {
        await using var donor = new TestDonor(o => o.StatusFile = StatusPath);
        Assert.That(donor.Daemon.StatusWrites, Is.EqualTo(1), "the first at start");
        var first = Read(File.ReadAllText(StatusPath));
        Assert.That((first.State, first.Headroom, first.MemAvailable, first.MemAvailableSmoothed), Is.EqualTo(("running", 16L << 20, 64L << 30, 64L << 30)));

        await using (var early = await donor.ConnectAsync(ct))
        {
            Assert.That((await early.QueryFreeAsync(Slab, ct)).Status, Is.EqualTo(DaemonStatus.HelloFirst));
        }

        await using var client = await donor.HelloAsync(ClientId, ct);
        var slab = await client.AllocOkAsync(Slab, ct);
        Assert.That(await client.WriteAsync(slab, 0, new byte[4096], ct), Is.EqualTo(DaemonStatus.Ok));
        donor.Time.Advance(TimeSpan.FromMilliseconds(999));
        Assert.That(donor.Daemon.StatusWrites, Is.EqualTo(1), "not before a second has passed");

        // Under the headroom at 1 s: the monitor reads it and evicts the one slab. Two seconds on, whichever of the
        // monitor and the rewrite runs first at a tick, the file shows the eviction and the reading.
        donor.Memory.Available = donor.Options.Headroom - 1;
        donor.Time.Advance(TimeSpan.FromMilliseconds(1));
        await client.NextEvictionAsync(ct);
        await TestDonor.WaitForAsync(() => donor.Daemon.StatusWrites == 2, ct);
        for (var second = 3; second <= 4; second++)
        {
            donor.Time.Advance(TimeSpan.FromSeconds(1));
            await TestDonor.WaitForAsync(() => donor.Daemon.StatusWrites == second, ct);
        }

        var status = await WaitForFileAsync(s => s.Time == first.Time + TimeSpan.FromSeconds(3), ct);
        Assert.That(status.MemAvailable, Is.EqualTo(donor.Options.Headroom - 1));
        Assert.That(status.MemAvailableSmoothed, Is.EqualTo(donor.Options.Headroom - 1), "smoothing 1");
        Assert.That((status.Evictions, status.HandshakesRefused, status.Slabs), Is.EqualTo((1L, 1L, 0)));
        Assert.That(status.Clients, Is.EqualTo(new[] { new DonorClientStatus(ClientHex, 0, 0, 0, 1, false) }));

        var table = DonorStatusView.Format(status, status.Time);
        Assert.That(table, Does.Contain("(status 0 s old)"));
        Assert.That(table, Does.Contain(": evicting"), "smoothed MemAvailable under the headroom");
        Assert.That(table, Does.Contain("evictions 1, handshakes refused 1"));

        // The same file seen 10 s later by the view: stale, printed, exit 1 naming the file and the option.
        var later = new FakeTimeProvider(status.Time + TimeSpan.FromSeconds(10));
        var (exit, output, error) = await RunViewAsync(["--status-file", StatusPath], later, ct);
        Assert.That(exit, Is.EqualTo(1));
        Assert.That(output, Does.Contain("status 10 s old: is the daemon still running?"));
        Assert.That(error, Does.Contain($"{StatusPath} was last written 10 s ago yet says \"running\"").And.Contain($"--status-file {StatusPath}"));
        var (jsonExit, json, _) = await RunViewAsync(["--status-file", StatusPath, "--json"], later, ct);
        Assert.That(jsonExit, Is.EqualTo(1), "stale in --json too");
        Assert.That(Read(json).Evictions, Is.EqualTo(1), "the file as it is");
    }

    [Test, CancelAfter(20_000)]
    public async Task Watch_redraws_in_place_until_cancelled(CancellationToken ct)
    {
        await using var donor = new TestDonor(o => o.StatusFile = StatusPath);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        stop.CancelAfter(TimeSpan.FromSeconds(1));
        // The file's clock is the donor's fake one, standing still: seen at that same moment it is never stale.
        var (exit, frames, _) = await RunViewAsync(["--status-file", StatusPath, "--watch", "0.2"], new FrozenClock(donor.Time), stop.Token);
        Assert.That(exit, Is.Zero);
        Assert.That(frames.Split("\u001b[H\u001b[2J").Length - 1, Is.GreaterThanOrEqualTo(2), "redrawn in place");
        Assert.That(frames, Does.Contain("swapnbd-daemon pid"));
    }

    [Test, CancelAfter(20_000)]
    public async Task Ctrl_C_while_the_file_is_being_read_ends_watch_cleanly(CancellationToken ct)
    {
        await using var donor = new TestDonor(o => o.StatusFile = StatusPath);
        // Cancelled before the first read: the read itself sees the cancellation (CI once caught it mid-read).
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        await stop.CancelAsync();
        var (exit, frames, error) = await RunViewAsync(["--status-file", StatusPath, "--watch", "0.2"], new FrozenClock(donor.Time), stop.Token);
        Assert.That((exit, frames, error), Is.EqualTo((0, "", "")));
    }

    [Test, CancelAfter(20_000)]
    public async Task A_missing_file_a_foreign_file_or_a_bad_argument_says_what_to_do(CancellationToken ct)
    {
        var missing = Path.Combine(_directory, "none.json");
        var (exit, _, why) = await RunViewAsync(["--status-file", missing], TimeProvider.System, ct);
        Assert.That(exit, Is.EqualTo(1));
        Assert.That(why, Does.Contain($"cannot read {missing}").And.Contain($"swapnbd-daemon writes it with --status-file {missing}"));

        File.WriteAllText(StatusPath, "{ \"pid\": 1 }");
        (exit, _, why) = await RunViewAsync(["--status-file", StatusPath], TimeProvider.System, ct);
        Assert.That(exit, Is.EqualTo(1));
        Assert.That(why, Does.Contain($"{StatusPath} is not a status file of swapnbd-daemon"));

        (exit, _, why) = await RunViewAsync(["--bogus"], TimeProvider.System, ct);
        Assert.That(exit, Is.EqualTo(2));
        Assert.That(why, Does.Contain("'--bogus' is not known").And.Contain("usage: swapnbd-daemon status"));
        (exit, _, why) = await RunViewAsync(["--watch", "0"], TimeProvider.System, ct);
        Assert.That(exit, Is.EqualTo(2));
        Assert.That(why, Does.Contain("--watch SECONDS must be positive"));
    }

    [Test]
    public void The_option_is_checked_at_start()
    {
        var options = new Swap.Donor.DonorOptions { InsecureNoAuth = true, StatusFile = Path.Combine(_directory, "no-such-dir", "status.json") };
        Assert.That(options.Validate(), Has.One.StartsWith("StatusFile: ").And.Contains("not a file path in an existing directory"));
        options.StatusFile = StatusPath;
        Assert.That(options.Validate(), Is.Empty);
    }

    private static DonorStatus Read(string json) => JsonSerializer.Deserialize(json, DonorStatusJsonContext.Default.DonorStatus)!;

    /// <summary>Polls the status file (rewritten every second) until <paramref name="condition"/> holds of it.</summary>
    private async Task<DonorStatus> WaitForFileAsync(Func<DonorStatus, bool> condition, CancellationToken ct)
    {
        while (true)
        {
            if (File.Exists(StatusPath) && Read(await File.ReadAllTextAsync(StatusPath, ct)) is { } status && condition(status))
            {
                return status;
            }

            await Task.Delay(50, ct);
        }
    }

    private static async Task<(int Exit, string Output, string Error)> RunViewAsync(string[] args, TimeProvider time, CancellationToken ct)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var exit = await DonorStatusView.Command.RunAsync(args, output, error, time, ct);
        return (exit, output.ToString(), error.ToString());
    }

    /// <summary>The wall clock's delays with a fixed "now": a fake daemon clock's file seen at the moment it was written.</summary>
    private sealed class FrozenClock(TimeProvider now) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => now.GetUtcNow();
    }
}
