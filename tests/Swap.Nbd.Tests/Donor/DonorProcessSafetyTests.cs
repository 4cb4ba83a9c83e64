using System.Globalization;
using NUnit.Framework;
using Swap.Nbd.Tests.Support;

namespace Swap.Nbd.Tests.Donor;

/// <summary>The published swapnbd-daemon locks the memory it lends, and leaves the OOM killer and I/O flags alone.</summary>
[Category(Tier.Integration)]
public sealed class DonorProcessSafetyTests
{
    [Test, CancelAfter(60_000)]
    public async Task By_default_lent_memory_is_locked_and_nothing_else_is_changed(CancellationToken ct)
    {
        var port = RunningExe.FreePort();
        using var daemon = RunningExe.Start("swapnbd-daemon", ["--listen", $"127.0.0.1:{port}", "--max-memory", "64MiB", "--headroom", "0", "--auth-key-file", TestKeys.File]);
        await daemon.WaitListeningAsync(port, ct);

        await daemon.WaitForLogAsync("[900]", ct);
        Assert.That(daemon.StatusBytes("VmLck"), Is.GreaterThan(0), daemon.Log);
        Assert.That(daemon.Log, Does.Contain("locked as touched").And.Contain("GC heap hard limit 512 MiB"));
        Assert.That(daemon.Log, Does.Not.Contain("[903]").And.Not.Contain("[904]").And.Not.Contain("oom_score_adj"));
        var own = int.Parse(File.ReadAllText("/proc/self/oom_score_adj").Trim(), CultureInfo.InvariantCulture);
        Assert.That(daemon.OomScoreAdj, Is.EqualTo(own));
    }

    [Test, CancelAfter(60_000)]
    public async Task Lock_memory_false_leaves_memory_unlocked(CancellationToken ct)
    {
        var port = RunningExe.FreePort();
        using var daemon = RunningExe.Start("swapnbd-daemon", ["--listen", $"127.0.0.1:{port}", "--lock-memory", "false", "--auth-key-file", TestKeys.File]);
        await daemon.WaitListeningAsync(port, ct);

        await daemon.WaitForLogAsync("[902]", ct);
        Assert.That(daemon.StatusBytes("VmLck"), Is.Zero);
    }

    [Test, CancelAfter(30_000)]
    public async Task A_bad_lock_memory_value_is_refused_naming_the_key(CancellationToken ct)
    {
        using var daemon = RunningExe.Start("swapnbd-daemon", ["--listen", "127.0.0.1:0", "--auth-key-file", TestKeys.File],
            environment: new Dictionary<string, string> { ["SWAPNBD_DAEMON_LOCK_MEMORY"] = "sometimes" });

        Assert.That(await daemon.WaitForExitAsync(ct), Is.EqualTo(2), daemon.Log);
        Assert.That(daemon.Log, Does.Contain("LockMemory: 'sometimes' is not true or false"));
    }

    [Test, CancelAfter(60_000)]
    public async Task Without_the_right_to_lock_the_daemon_warns_and_still_lends(CancellationToken ct)
    {
        var port = RunningExe.FreePort();
        using var daemon = RunningExe.Start("swapnbd-daemon", ["--listen", $"127.0.0.1:{port}", "--max-memory", "64MiB", "--headroom", "0", "--auth-key-file", TestKeys.File],
            wrapper: ["prlimit", "--memlock=0:0", "--", "setpriv", "--bounding-set=-ipc_lock", "--"]);
        await daemon.WaitListeningAsync(port, ct);

        await daemon.WaitForLogAsync("[901]", ct);
        Assert.That(daemon.Log, Does.Contain("MEMORY NOT LOCKED: mlockall failed with EPERM"));
        await using var client = await DonorTestClient.ConnectAsync(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, port), ct);
        Assert.That(await client.HelloAsync(9, ct), Is.EqualTo(Swap.Daemon.Protocol.DaemonStatus.Ok));
        var slab = await client.AllocOkAsync(1 << 20, ct);
        Assert.That(await client.WriteAsync(slab, 0, new byte[4096], ct), Is.EqualTo(Swap.Daemon.Protocol.DaemonStatus.Ok));
    }
}
