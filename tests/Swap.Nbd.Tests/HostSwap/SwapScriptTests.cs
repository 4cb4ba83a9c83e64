using NUnit.Framework;
using Swap.Nbd.Tests.Support;

namespace Swap.Nbd.Tests.HostSwap;

/// <summary>
/// scripts/swap-attach.sh and swap-detach.sh on their own, against an in-process server: what they set up, the state
/// file, detach run twice and after a partial attach, errors, and busybox ash (the shell of the qemu guests).
/// </summary>
[Category(Tier.Swap)]
public sealed class SwapScriptTests
{
    private static string Attach => Repo.Path("scripts", "swap-attach.sh");

    private static string Detach => Repo.Path("scripts", "swap-detach.sh");

    private static string NewName() => "test-" + Guid.NewGuid().ToString("N")[..8];

    [TestCase("dash")]
    [TestCase("busybox")]
    [CancelAfter(120_000)]
    public async Task Attach_records_each_step_and_detach_undoes_all_of_it_twice(string shell, CancellationToken ct)
    {
        await using var server = TestServer.Start(64L << 20);
        var name = NewName();
        string[] prefix = shell == "busybox" ? ["sh"] : [];
        var package = shell == "busybox" ? "busybox-static" : "dash";
        try
        {
            var attach = await ExternalTool.RunAsync(shell, package,
                [.. prefix, Attach, "--socket", server.SocketPath, "--name", name, "--priority", "7", "--discard"], TimeSpan.FromSeconds(60), ct);
            Assert.That(attach.ExitCode, Is.Zero, attach.ToString());
            var device = attach.Stdout.Trim();
            Assert.That(device, Does.StartWith("/dev/loop"), "stdout is the swap device alone");
            Assert.That(attach.Stderr, Does.Contain("this kernel has no nbd module").And.Contain("using nbdfuse + a loop device"));

            var swaps = SwapAttachment.SwapsEntries();
            Assert.That(swaps.ContainsKey(device), Is.True, "the device is swap");
            Assert.That(swaps[device].Size, Is.EqualTo((64L << 20) - 4096), "all of the export but mkswap's header page");
            if (shell == "dash")
            {
                Assert.That(swaps[device].Priority, Is.EqualTo(7));
                var direct = await File.ReadAllTextAsync($"/sys/block/{Path.GetFileName(device)}/loop/dio", ct);
                Assert.That(direct.Trim(), Is.EqualTo("1"), "the loop device uses direct I/O");
            }
            else
            {
                Assert.That(attach.Stderr, Does.Contain("cannot set a priority"), "Debian's busybox swapon has no -p, and says so");
            }

            var state = await File.ReadAllLinesAsync(Path.Combine(SwapAttachment.RunDirectory, "attach-" + name), ct);
            Assert.That(state.Select(l => l.Split('=')[0]), Is.EqualTo(new[] { "name", "mode", "fuse_dir", "fuse_pid", "loop", "swap" }));
            Assert.That(state, Does.Contain("mode=fuse").And.Contain("swap=" + device).And.Contain("loop=" + device));

            Assert.That(server.Device.AllocatedBytes, Is.GreaterThanOrEqualTo(4096), "mkswap's header went through the loop device and nbdfuse to the server");

            var detach = await ExternalTool.RunAsync(shell, package, [.. prefix, Detach, "--name", name], TimeSpan.FromSeconds(60), ct);
            Assert.That(detach.ExitCode, Is.Zero, detach.ToString());
            var order = new[] { "swapoff " + device, "losetup -d " + device, "unmounted " }.Select(s => detach.Stderr.IndexOf(s, StringComparison.Ordinal)).ToList();
            Assert.That(order, Is.Ordered.And.All.GreaterThanOrEqualTo(0), "swapoff, then the loop device, then the mount:\n" + detach.Stderr);
            Assert.That(SwapAttachment.LeftoversOf(name, device), Is.Empty);

            var again = await ExternalTool.RunAsync(shell, package, [.. prefix, Detach, "--name", name], TimeSpan.FromSeconds(60), ct);
            Assert.That((again.ExitCode, again.Stderr.Trim()), Is.EqualTo((0, $"swap-detach: nothing attached as '{name}' (no /run/swapnbd/attach-{name})")));
        }
        finally
        {
            await ExternalTool.RunAsync(Detach, "the repository's scripts", ["--name", name], TimeSpan.FromSeconds(60), CancellationToken.None);
        }
    }

    [Test, CancelAfter(120_000)]
    public async Task Page_cluster_is_set_while_attached_and_put_back_at_detach(CancellationToken ct)
    {
        const string PageCluster = "/proc/sys/vm/page-cluster";
        await using var server = TestServer.Start(32L << 20);
        var name = NewName();
        var before = (await File.ReadAllTextAsync(PageCluster, ct)).Trim();
        var wanted = before == "0" ? "1" : "0";
        try
        {
            var attach = await ExternalTool.RunAsync(Attach, "the repository's scripts",
                ["--socket", server.SocketPath, "--name", name, "--page-cluster", wanted], TimeSpan.FromSeconds(60), ct);
            Assert.That(attach.ExitCode, Is.Zero, attach.ToString());
            Assert.That((await File.ReadAllTextAsync(PageCluster, ct)).Trim(), Is.EqualTo(wanted));
            Assert.That(attach.Stderr, Does.Contain($"vm.page-cluster {before} -> {wanted} (restored at detach)"));
            var state = await File.ReadAllLinesAsync(Path.Combine(SwapAttachment.RunDirectory, "attach-" + name), ct);
            Assert.That(state, Does.Contain("page_cluster_before=" + before).And.Contain("page_cluster=" + wanted));

            var detach = await ExternalTool.RunAsync(Detach, "the repository's scripts", ["--name", name], TimeSpan.FromSeconds(60), ct);
            Assert.That(detach.ExitCode, Is.Zero, detach.ToString());
            Assert.That((await File.ReadAllTextAsync(PageCluster, ct)).Trim(), Is.EqualTo(before), "the value before the attach");

            var bad = await ExternalTool.RunAsync(Attach, "the repository's scripts", ["--socket", server.SocketPath, "--page-cluster", "12"], TimeSpan.FromSeconds(30), ct);
            Assert.That((bad.ExitCode, bad.Stderr.Trim()), Is.EqualTo((1, "swap-attach: --page-cluster '12' is not 0..9 or keep")));
        }
        finally
        {
            await ExternalTool.RunAsync(Detach, "the repository's scripts", ["--name", name], TimeSpan.FromSeconds(60), CancellationToken.None);
            await File.WriteAllTextAsync(PageCluster, before, CancellationToken.None);
        }
    }

    [Test, CancelAfter(120_000)]
    public async Task Detach_after_a_partial_teardown_finishes_the_job(CancellationToken ct)
    {
        await using var server = TestServer.Start(32L << 20);
        var name = NewName();
        await using var swap = await SwapAttachment.AttachAsync(name, ["--socket", server.SocketPath], ct);

        // Someone already ran swapoff and losetup -d by hand: detach must do the rest and not trip over the missing parts.
        var swapoff = await ExternalTool.RunAsync("swapoff", "mount", [swap.Device], TimeSpan.FromSeconds(30), ct);
        var losetup = await ExternalTool.RunAsync("losetup", "mount", ["-d", swap.Device], TimeSpan.FromSeconds(30), ct);
        Assert.That((swapoff.ExitCode, losetup.ExitCode), Is.EqualTo((0, 0)), swapoff + "\n" + losetup);

        var detach = await swap.DetachAsync(ct);
        Assert.That(detach.ExitCode, Is.Zero, detach.ToString());
        Assert.That(detach.Stderr, Does.Not.Contain("swapoff").And.Not.Contain("losetup -d").And.Contain("unmounted"));
        Assert.That(swap.Leftovers(), Is.Empty);
    }

    [Test, CancelAfter(120_000)]
    public async Task An_attach_that_fails_half_way_undoes_itself(CancellationToken ct)
    {
        var name = NewName();
        // Nothing listens on this port: nbdfuse fails after the state file and the mount directory exist.
        var attach = await ExternalTool.RunAsync(Attach, "the repository's scripts", ["--tcp", $"127.0.0.1:{Loopback.FreePort()}", "--name", name], TimeSpan.FromSeconds(60), ct);
        Assert.That(attach.ExitCode, Is.EqualTo(1), attach.ToString());
        Assert.That(attach.Stdout, Is.Empty);
        Assert.That(attach.Stderr, Does.Contain("nbdfuse nbd://127.0.0.1:").And.Contain("exited").And.Contain("attach failed; undoing what was set up"));
        Assert.That(SwapAttachment.LeftoversOf(name, null), Is.Empty);
    }

    [TestCase(new string[0], "no server socket at the default /run/swapnbd/swapnbd.sock")]
    [TestCase(new[] { "--socket", "/nonexistent/x.sock" }, "--socket /nonexistent/x.sock: no server socket there")]
    [TestCase(new[] { "--tcp", "localhost" }, "--tcp 'localhost' is not HOST:PORT")]
    [TestCase(new[] { "--tcp", "127.0.0.1:1", "--priority", "40000" }, "--priority '40000' is not a number from -1 to 32767")]
    [TestCase(new[] { "--tcp", "127.0.0.1:1", "--name", "a/b" }, "--name 'a/b': letters, digits")]
    [TestCase(new[] { "--tcp", "127.0.0.1:1", "--mode", "ioctl" }, "--mode 'ioctl': auto, nbd or fuse")]
    [TestCase(new[] { "--bogus" }, "unknown argument '--bogus'")]
    [CancelAfter(30_000)]
    public async Task Bad_arguments_are_refused_in_one_line_before_anything_is_touched(string[] args, string message, CancellationToken ct)
    {
        var before = Directory.Exists(SwapAttachment.RunDirectory) ? Directory.GetFileSystemEntries(SwapAttachment.RunDirectory).Length : 0;
        var attach = await ExternalTool.RunAsync(Attach, "the repository's scripts", args, TimeSpan.FromSeconds(20), ct);
        Assert.That(attach.ExitCode, Is.EqualTo(1), attach.ToString());
        Assert.That(attach.Stderr, Does.Contain("swap-attach: " + message));
        var after = Directory.Exists(SwapAttachment.RunDirectory) ? Directory.GetFileSystemEntries(SwapAttachment.RunDirectory).Length : 0;
        Assert.That(after, Is.EqualTo(before), "no state was written");
    }

    [Test, CancelAfter(30_000)]
    public async Task A_name_already_attached_is_refused(CancellationToken ct)
    {
        await using var server = TestServer.Start(16L << 20);
        var name = NewName();
        await using var swap = await SwapAttachment.AttachAsync(name, ["--socket", server.SocketPath], ct);
        var second = await ExternalTool.RunAsync(Attach, "the repository's scripts", ["--socket", server.SocketPath, "--name", name], TimeSpan.FromSeconds(20), ct);
        Assert.That(second.ExitCode, Is.EqualTo(1));
        Assert.That(second.Stderr, Does.Contain($"'{name}' is already attached"));
        Assert.That(swap.SwapsEntry(), Is.Not.Null, "the first attachment is untouched");
    }
}
