using System.Runtime.Versioning;
using NUnit.Framework;
using Swap.Nbd.Tests.Donor;
using Swap.Nbd.Tests.Support;

namespace Swap.Nbd.Tests.Security;

/// <summary>
/// The published swapnbd-daemon and swapnbd-server with a bad key file or none: exit code 2 and one line on stderr
/// naming --auth-key-file, the path and the fix; keygen as an operator runs it; --insecure-no-auth warns.
/// </summary>
[Category(Tier.Integration)]
[UnsupportedOSPlatform("windows")]
public sealed class KeyFileExeTests
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(20);

    [TestCase("swapnbd-daemon", "mode", "may be read or written by group or others (mode 0644); run: chmod 600 ")]
    [TestCase("swapnbd-daemon", "length", "holds 33 bytes")]
    [TestCase("swapnbd-daemon", "encoding", "is not 64 hex digits")]
    [TestCase("swapnbd-daemon", "missing", "does not exist; create it with: swapnbd-daemon keygen ")]
    [TestCase("swapnbd-server", "mode", "may be read or written by group or others (mode 0644); run: chmod 600 ")]
    [TestCase("swapnbd-server", "length", "holds 33 bytes")]
    [TestCase("swapnbd-server", "encoding", "is not 64 hex digits")]
    [TestCase("swapnbd-server", "missing", "does not exist; create it with: swapnbd-daemon keygen ")]
    [CancelAfter(30_000)]
    public async Task A_bad_key_file_exits_2_with_one_line_naming_the_option_and_the_path(string exe, string problem, string expected, CancellationToken ct)
    {
        var path = TestKeys.ScratchPath($"{exe}-{problem}-{Guid.NewGuid():N}.key");
        switch (problem)
        {
            case "mode":
                File.Copy(TestKeys.File, path);
                File.SetUnixFileMode(path, (UnixFileMode)0b110_100_100);
                break;
            case "length":
                await File.WriteAllTextAsync(path, "00112233445566778899aabbccddeeff\n", ct);
                File.SetUnixFileMode(path, (UnixFileMode)0b110_000_000);
                break;
            case "encoding":
                await File.WriteAllTextAsync(path, new string('x', 64) + "\n", ct);
                File.SetUnixFileMode(path, (UnixFileMode)0b110_000_000);
                break;
        }

        var result = await ExternalTool.RunAsync(Repo.Path("out", exe), "scripts/build.sh", [.. ArgsFor(exe), "--auth-key-file", path], Limit, ct);
        Assert.That(result.ExitCode, Is.EqualTo(2), result.ToString());
        var lines = result.Stderr.Split('\n').Where(l => l.Contains("--auth-key-file", StringComparison.Ordinal)).ToList();
        Assert.That(lines, Has.Count.EqualTo(1), result.ToString());
        Assert.That(lines[0], Does.StartWith($"{exe}: configuration error: AuthKeyFile: --auth-key-file {path} ").And.Contain(expected));
    }

    [TestCase("swapnbd-daemon")]
    [TestCase("swapnbd-server")]
    [CancelAfter(30_000)]
    public async Task Without_a_key_or_insecure_no_auth_the_program_refuses_to_start(string exe, CancellationToken ct)
    {
        var result = await ExternalTool.RunAsync(Repo.Path("out", exe), "scripts/build.sh", ArgsFor(exe), Limit, ct);
        Assert.That(result.ExitCode, Is.EqualTo(2), result.ToString());
        Assert.That(result.Stderr, Does.Contain("AuthKeyFile: ").And.Contain("give --auth-key-file PATH").And.Contain("--insecure-no-auth"));
    }

    [Test, CancelAfter(30_000)]
    public async Task Keygen_creates_a_0600_key_refuses_to_overwrite_and_replaces_with_force(CancellationToken ct)
    {
        var exe = Repo.Path("out", "swapnbd-daemon");
        var path = TestKeys.ScratchPath($"keygen-exe-{Guid.NewGuid():N}.key");
        var made = await ExternalTool.RunAsync(exe, "scripts/build.sh", ["keygen", path], Limit, ct);
        Assert.That(made.ExitCode, Is.Zero, made.ToString());
        Assert.That(File.GetUnixFileMode(path), Is.EqualTo(UnixFileMode.UserRead | UnixFileMode.UserWrite));
        var key = await File.ReadAllTextAsync(path, ct);
        Assert.That(key, Does.Match("^[0-9a-f]{64}\n$"));
        Assert.That(made.Stdout + made.Stderr, Does.Not.Contain(key.Trim()), "the key is never printed");

        var again = await ExternalTool.RunAsync(exe, "scripts/build.sh", ["keygen", path], Limit, ct);
        Assert.That(again.ExitCode, Is.EqualTo(2), again.ToString());
        Assert.That(again.Stderr, Does.Contain($"{path} exists"));
        Assert.That(await File.ReadAllTextAsync(path, ct), Is.EqualTo(key));

        var forced = await ExternalTool.RunAsync(exe, "scripts/build.sh", ["keygen", path, "--force"], Limit, ct);
        Assert.That(forced.ExitCode, Is.Zero, forced.ToString());
        Assert.That(await File.ReadAllTextAsync(path, ct), Is.Not.EqualTo(key));

        var usage = await ExternalTool.RunAsync(exe, "scripts/build.sh", ["keygen"], Limit, ct);
        Assert.That(usage.ExitCode, Is.EqualTo(2), usage.ToString());
    }

    [Test, CancelAfter(60_000)]
    public async Task An_insecure_daemon_warns_at_start_and_serves_only_insecure_servers(CancellationToken ct)
    {
        await using var daemon = await TestDaemon.StartAsync(process: true, authArgs: ["--insecure-no-auth"]);
        await TestDonor.WaitForAsync(() => daemon.Output.Contains("[24]", StringComparison.Ordinal), ct);
        Assert.That(daemon.Output, Does.Contain("Running without authentication (--insecure-no-auth)"));
        var endPoint = new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, daemon.Port);
        await using (var keyed = await DonorTestClient.ConnectAsync(endPoint, ct))
        {
            Assert.That(await keyed.HelloAsync(1, ct), Is.EqualTo(Swap.Daemon.Protocol.DaemonStatus.Unauthorized));
        }

        await using var open = await DonorTestClient.ConnectAsync(endPoint, ct);
        Assert.That(await open.HelloAsync(2, ct, insecure: true), Is.EqualTo(Swap.Daemon.Protocol.DaemonStatus.Ok));
        Assert.That((await open.QueryFreeAsync(1 << 20, ct)).Status, Is.EqualTo(Swap.Daemon.Protocol.DaemonStatus.Ok));
    }

    /// <summary>Arguments that start the program but for the key (slab mode for the server; nothing is listened on).</summary>
    private static List<string> ArgsFor(string exe) => exe == "swapnbd-daemon"
        ? ["--listen", "127.0.0.1:0", "--lock-memory", "false"]
        : ["--listen", "127.0.0.1:0", "--portal", "/nonexistent/portal.list", "--backup-disk", TestKeys.ScratchPath("unused-backup.img"), "--lock-memory", "false"];
}
