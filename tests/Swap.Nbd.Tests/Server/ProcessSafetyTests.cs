using System.Globalization;
using NUnit.Framework;
using Swap.Nbd.Client;
using Swap.Nbd.Tests.Support;

namespace Swap.Nbd.Tests.Server;

/// <summary>
/// The published swapnbd-server as a process fit to serve swap: memory locked, OOM killer and I/O recursion kept away
/// where the kernel allows, and a loud warning, not a refusal to serve, where it does not.
/// </summary>
[Category(Tier.Integration)]
public sealed class ProcessSafetyTests
{
    private const int CapSysResource = 24;

    [Test, CancelAfter(60_000)]
    public async Task By_default_memory_is_locked_and_the_process_protected_as_far_as_allowed(CancellationToken ct)
    {
        using var server = RunningExe.Start("swapnbd-server", ["--size", "64MiB", "--listen", "127.0.0.1:0"]);
        var port = await server.ListeningPortAsync(ct);
        await server.WaitListeningAsync(port, ct);

        await server.WaitForLogAsync("[900]", ct);
        Assert.That(server.StatusBytes("VmLck"), Is.GreaterThan(0), server.Log);
        Assert.That(server.Log, Does.Contain("read in and locked"));
        Assert.That(server.Log, Does.Contain("GC heap hard limit 1024 MiB"));

        // Lowering oom_score_adj and PR_SET_IO_FLUSHER both need CAP_SYS_RESOURCE, which some sandboxes (this one)
        // take away even from root: then each must be one warning, and the server must run on.
        if (RunningExe.HasCapability(CapSysResource))
        {
            Assert.That(server.OomScoreAdj, Is.EqualTo(-1000), server.Log);
            Assert.That(server.Log, Does.Contain("[903]").And.Contain("[905]"));
        }
        else
        {
            var own = int.Parse(File.ReadAllText("/proc/self/oom_score_adj").Trim(), CultureInfo.InvariantCulture);
            Assert.That(server.OomScoreAdj, Is.EqualTo(own));
            Assert.That(server.Log, Does.Contain("[904]").And.Contain("PR_SET_IO_FLUSHER").And.Contain("EPERM"));
            Assert.That(server.Log, Does.Contain("[906]").And.Contain("oom_score_adj to -1000"));
        }
    }

    [Test, CancelAfter(60_000)]
    public async Task Lock_memory_false_leaves_memory_unlocked(CancellationToken ct)
    {
        using var server = RunningExe.Start("swapnbd-server", ["--size", "64MiB", "--listen", "127.0.0.1:0", "--lock-memory", "false"]);
        await server.WaitListeningAsync(await server.ListeningPortAsync(ct), ct);

        await server.WaitForLogAsync("[902]", ct);
        Assert.That(server.StatusBytes("VmLck"), Is.Zero);
        Assert.That(server.Log, Does.Not.Contain("MEMORY NOT LOCKED"));
    }

    [TestCase("switch")]
    [TestCase("environment")]
    [CancelAfter(30_000)]
    public async Task A_bad_lock_memory_value_is_refused_naming_the_key(string where, CancellationToken ct)
    {
        string[] args = ["--size", "64MiB", "--listen", "127.0.0.1:0"];
        using var server = where == "switch"
            ? RunningExe.Start("swapnbd-server", [.. args, "--lock-memory", "maybe"])
            : RunningExe.Start("swapnbd-server", args, environment: new Dictionary<string, string> { ["SWAPNBD_LOCK_MEMORY"] = "maybe" });

        Assert.That(await server.WaitForExitAsync(ct), Is.EqualTo(2), server.Log);
        Assert.That(server.Log, Does.Contain("LockMemory: 'maybe' is not true or false"));
    }

    /// <summary>
    /// Root keeps the right to lock (CAP_IPC_LOCK) whatever RLIMIT_MEMLOCK says, so the test takes it away: prlimit
    /// sets the limit, setpriv drops the capability from the bounding set before the server starts.
    /// </summary>
    [TestCase(0L, "EPERM")]
    [TestCase(1L << 20, "ENOMEM")]
    [CancelAfter(60_000)]
    public async Task Without_the_right_to_lock_the_server_warns_loudly_and_still_serves(long limit, string errno, CancellationToken ct)
    {
        using var server = RunningExe.Start("swapnbd-server", ["--size", "64MiB", "--listen", "127.0.0.1:0"],
            wrapper: ["prlimit", $"--memlock={limit}:{limit}", "--", "setpriv", "--bounding-set=-ipc_lock", "--"]);
        var port = await server.ListeningPortAsync(ct);
        await server.WaitListeningAsync(port, ct);

        await server.WaitForLogAsync("[901]", ct);
        Assert.That(server.Log, Does.Contain($"MEMORY NOT LOCKED: mlockall failed with {errno}"));
        Assert.That(server.Log, Does.Contain($"RLIMIT_MEMLOCK is {limit} bytes"));
        Assert.That(server.Log, Does.Contain("ulimit -l unlimited").And.Contain("LimitMEMLOCK=infinity").And.Contain("--lock-memory false"));
        Assert.That(server.StatusBytes("VmLck"), Is.Zero);

        await using var client = await NbdClientConnection.ConnectAsync($"nbd://127.0.0.1:{port}", ct: ct);
        var data = new byte[64 << 10];
        new Random(3).NextBytes(data);
        await client.WriteAsync(4096, data, ct: ct);
        var back = new byte[data.Length];
        await client.ReadAsync(4096, back, ct);
        Assert.That(back, Is.EqualTo(data));
    }

    /// <summary>
    /// Locked pages refuse MADV_DONTNEED, which is how the memory backend gives zeroed pages back: they must still
    /// read as zero afterwards, and the memory must still go back.
    /// </summary>
    [Test, CancelAfter(60_000)]
    public async Task Under_mlockall_zeroed_pages_read_zero_and_are_given_back(CancellationToken ct)
    {
        const int size = 32 << 20;
        const int zeroed = 30 << 20;
        using var server = RunningExe.Start("swapnbd-server", ["--size", "64MiB", "--listen", "127.0.0.1:0"]);
        var port = await server.ListeningPortAsync(ct);
        await server.WaitListeningAsync(port, ct);
        await server.WaitForLogAsync("[900]", ct);

        await using var client = await NbdClientConnection.ConnectAsync($"nbd://127.0.0.1:{port}", ct: ct);
        var data = new byte[size];
        new Random(5).NextBytes(data);
        for (var offset = 0; offset < size; offset += 1 << 20)
        {
            await client.WriteAsync(offset, data.AsMemory(offset, 1 << 20), ct: ct);
        }

        var written = server.StatusBytes("VmRSS");
        await client.WriteZeroesAsync(4096, zeroed, ct: ct);

        // Measured before reading the range back: reading untouched anonymous memory allocates pages on some kernels.
        Assert.That(server.StatusBytes("VmRSS"), Is.LessThan(written - (zeroed / 2)), "the zeroed pages went back to the kernel");
        var back = new byte[size];
        for (var offset = 0; offset < size; offset += 1 << 20)
        {
            await client.ReadAsync(offset, back.AsMemory(offset, 1 << 20), ct);
        }

        data.AsSpan(4096, zeroed).Clear();
        Assert.That(back, Is.EqualTo(data), "zeroed pages read zero, the others keep their data");
        Assert.That(server.StatusBytes("VmLck"), Is.GreaterThan(0), "and the rest stays locked");
    }

    [Test, CancelAfter(30_000)]
    public async Task Configuration_errors_exit_2_naming_every_key(CancellationToken ct)
    {
        var exe = Repo.Path("out", "swapnbd-server");
        var (exit, output) = await Repo.RunAsync(exe, ["--size", "lots", "--max-connections", "0", "--bogus", "1"], TimeSpan.FromSeconds(20), ct);
        Assert.That(exit, Is.EqualTo(2));
        Assert.That(output, Does.Contain("Size: 'lots' is not a size"));
        Assert.That(output, Does.Contain("MaxConnections: must be between"));
        Assert.That(output, Does.Contain("'--bogus' is not known"));
        Assert.That(output, Does.Not.Contain("   at "), "no stack trace");
    }
}
