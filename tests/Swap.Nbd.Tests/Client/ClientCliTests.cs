using System.Diagnostics;
using System.Text.Json;
using NUnit.Framework;
using Swap.Nbd.Client.Cli;
using Swap.Nbd.Tests.Support;

namespace Swap.Nbd.Tests.Client;

/// <summary>The swapnbd-client entry point run in-process (and once as the built program) against a real server.</summary>
[Category(Tier.Integration)]
public sealed class ClientCliTests
{
    [Test, CancelAfter(20_000)]
    public async Task Info_prints_name_size_flags_and_block_sizes(CancellationToken ct)
    {
        await using var server = TestServer.Start(64L << 20);
        var (code, stdout, stderr) = await RunAsync(ct, "info", server.TcpUri);
        Assert.That(code, Is.EqualTo(0), stderr);
        Assert.That(stdout, Does.Contain("export: \"swapnbd\"")
            .And.Contain("size: 67108864 (64 MiB)")
            .And.Contain("send_flush").And.Contain("can_multi_conn").And.Contain("send_fast_zero")
            .And.Contain("block size: minimum 1, preferred 4096, maximum 33554432")
            .And.Contain("description: SwapNbd export"));
        Assert.That(stderr, Is.Empty);

        (code, stdout, _) = await RunAsync(ct, "info", "--list", server.UnixUri);
        Assert.That(code, Is.EqualTo(0));
        Assert.That(stdout, Does.Contain("export: \"swapnbd\""));

        (code, stdout, _) = await RunAsync(ct, "info", "--json", server.UnixUri);
        Assert.That(code, Is.EqualTo(0));
        using var json = JsonDocument.Parse(stdout);
        Assert.That(json.RootElement.GetProperty("size").GetInt64(), Is.EqualTo(64L << 20));
    }

    [Test, CancelAfter(30_000)]
    public async Task Bench_runs_for_a_second_and_reports(CancellationToken ct)
    {
        await using var server = TestServer.Start(64L << 20);
        var (code, stdout, stderr) = await RunAsync(ct, "bench", server.TcpUri, "--rw", "randrw", "--bs", "4k", "--qd", "8",
            "--connections", "2", "--seconds", "1.5", "--size-limit", "8M", "--rwmix-read", "70", "--json");
        Assert.That(code, Is.EqualTo(0), stderr);
        using var json = JsonDocument.Parse(stdout);
        var root = json.RootElement;
        Assert.Multiple(() =>
        {
            Assert.That(root.GetProperty("reads").GetInt64(), Is.GreaterThan(0));
            Assert.That(root.GetProperty("writes").GetInt64(), Is.GreaterThan(0));
            Assert.That(root.GetProperty("iops").GetDouble(), Is.GreaterThan(0));
            Assert.That(root.GetProperty("errors").GetInt64(), Is.EqualTo(0));
            Assert.That(root.GetProperty("latency_us").GetProperty("p99").GetDouble(),
                Is.GreaterThanOrEqualTo(root.GetProperty("latency_us").GetProperty("p50").GetDouble()));
            Assert.That(root.GetProperty("seconds").GetDouble(), Is.EqualTo(1.5).Within(0.5));
        });
        Assert.That(stderr, Does.Match(@"\[\s*1\.\ds\]\s+\d+ IOPS"), "a progress line about once a second");

        // Writes stay inside --size-limit: nothing beyond 8 MiB was touched.
        var tail = new byte[4096];
        Assert.That(server.Device.TryRead(8L << 20, tail), Is.True);
        Assert.That(tail, Is.All.EqualTo(0));

        (code, stdout, stderr) = await RunAsync(ct, "bench", server.UnixUri, "--rw", "read", "--seconds", "1", "--qd", "4");
        Assert.That(code, Is.EqualTo(0), stderr);
        Assert.That(stdout, Does.Contain("IOPS:").And.Contain("p99.9").And.Contain("errors:   0"));
    }

    [TestCase(new[] { "info", "nbd://[::1/" }, 2, "invalid NBD URI")]
    [TestCase(new[] { "info", "http://x/" }, 2, "unknown scheme")]
    [TestCase(new[] { "info" }, 2, "info: missing URI")]
    [TestCase(new string[0], 2, "missing command")]
    [TestCase(new[] { "frobnicate" }, 2, "unknown command 'frobnicate'")]
    [TestCase(new[] { "bench", "nbd://h/", "--qd" }, 2, "'--qd' needs a value")]
    [TestCase(new[] { "bench", "nbd://h/", "--qd", "0" }, 2, "--qd '0'")]
    [TestCase(new[] { "bench", "nbd://h/", "--rw", "sideways" }, 2, "--rw 'sideways'")]
    [TestCase(new[] { "bench", "nbd://h/", "--bs", "4x" }, 2, "--bs '4x'")]
    [TestCase(new[] { "bench", "nbd://h/", "--turbo" }, 2, "unknown option '--turbo'")]
    [TestCase(new[] { "bench", "nbd://h/", "--rwmix-read", "10" }, 2, "only applies to --rw randrw")]
    [TestCase(new[] { "attach" }, 2, "attach: missing URI")]
    [TestCase(new[] { "attach", "nbd://h/", "--block-size", "1000" }, 2, "--block-size '1000' must be a power of two")]
    [TestCase(new[] { "attach", "nbd://h/", "--connections", "0" }, 2, "--connections '0'")]
    [TestCase(new[] { "attach", "nbd://h/", "--dead-timeout", "-1" }, 2, "--dead-timeout '-1'")]
    [TestCase(new[] { "attach", "nbd://h/", "--persist=yes" }, 2, "'--persist' takes no value")]
    [TestCase(new[] { "attach", "ftp://h/" }, 2, "unknown scheme")]
    [TestCase(new[] { "detach" }, 2, "detach: missing device")]
    [TestCase(new[] { "detach", "/dev/sda" }, 2, "'/dev/sda' is not an nbd device")]
    [TestCase(new[] { "status", "nbd0", "nbd1" }, 2, "status: expected at most one device")]
    [CancelAfter(10_000)]
    public async Task Usage_errors_are_one_line_with_exit_code_2(string[] args, int expected, string message, CancellationToken ct)
    {
        var (code, stdout, stderr) = await RunAsync(ct, args);
        Assert.That(code, Is.EqualTo(expected));
        Assert.That(stdout, Is.Empty);
        AssertOneLine(stderr, message);
    }

    [Test, CancelAfter(10_000)]
    public async Task Refused_connection_is_one_line_with_exit_code_1(CancellationToken ct)
    {
        var port = Loopback.FreePort();
        foreach (var command in new[] { "info", "bench" })
        {
            var (code, _, stderr) = await RunAsync(ct, command, $"nbd://127.0.0.1:{port}/", "--seconds", "1");
            if (command == "info")
            {
                // info has no --seconds: that is a usage error, checked before connecting.
                Assert.That(code, Is.EqualTo(2));
                (code, _, stderr) = await RunAsync(ct, command, $"nbd://127.0.0.1:{port}/");
            }

            Assert.That(code, Is.EqualTo(1), command);
            AssertOneLine(stderr, $"cannot connect to 127.0.0.1:{port}");
        }

        var (unixCode, _, unixErr) = await RunAsync(ct, "info", "nbd+unix:///?socket=/nonexistent/nbd.sock");
        Assert.That(unixCode, Is.EqualTo(1));
        AssertOneLine(unixErr, "cannot connect to unix:/nonexistent/nbd.sock");
    }

    [TestCase("status", "", "")]
    [TestCase("detach", "/dev/nbd3", "")]
    [TestCase("attach", "nbd://127.0.0.1:1/", "--persist")]
    [CancelAfter(10_000)]
    public async Task Netlink_commands_fail_with_one_line_without_the_nbd_module(string command, string arg, string flag, CancellationToken ct)
    {
        if (Directory.Exists("/sys/module/nbd"))
        {
            Assert.Fail("this host has the nbd module; the kernel tests (qemu) cover attach/detach/status there");
        }

        // The family lookup comes first: no connection is tried, no memory is locked.
        var (code, stdout, stderr) = await RunAsync(ct, new[] { command, arg, flag }.Where(a => a.Length > 0).ToArray());
        Assert.That(code, Is.EqualTo(1));
        Assert.That(stdout, Is.Empty);
        AssertOneLine(stderr, "this kernel has no nbd netlink family: modprobe nbd");
    }

    [Test, CancelAfter(10_000)]
    public async Task Help_prints_usage(CancellationToken ct)
    {
        var (code, stdout, stderr) = await RunAsync(ct, "--help");
        Assert.That(code, Is.EqualTo(0));
        Assert.That(stdout, Does.Contain("Usage: swapnbd-client").And.Contain("--rwmix-read")
            .And.Contain("attach URI").And.Contain("--dead-timeout").And.Contain("detach DEV").And.Contain("status [DEV]"));
        Assert.That(stderr, Is.Empty);
    }

    [Test, CancelAfter(30_000)]
    public async Task Built_program_reports_a_refused_connection_without_a_stack_trace(CancellationToken ct)
    {
        // The tests reference libraries only: the built program is the one scripts/build.sh published (checked current).
        var start = new ProcessStartInfo(OutBinary.Path("swapnbd-client")) { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var arg in new[] { "info", $"nbd://127.0.0.1:{Loopback.FreePort()}/" })
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync(ct);
        var stdout = process.StandardOutput.ReadToEndAsync(ct);
        await process.WaitForExitAsync(ct);
        Assert.That(process.ExitCode, Is.EqualTo(1));
        Assert.That(await stdout, Is.Empty);
        AssertOneLine(await stderr, "cannot connect to 127.0.0.1:");
    }

    [Test, CancelAfter(30_000)]
    public async Task Native_binary_runs_without_the_dotnet_runtime(CancellationToken ct)
    {
        var exe = Repo.Path("out", "swapnbd-client");
        Assert.That(File.Exists(exe), Is.True, "scripts/build.sh publishes the NativeAOT client to out/");
        Assert.That(File.Exists(Repo.Path("out", "swapnbd-client.dll")), Is.False, "NativeAOT: no managed assembly beside it");
        var (exit, output) = await Repo.RunAsync("ldd", [exe], TimeSpan.FromSeconds(10), ct);
        Assert.That(exit, Is.Zero, output);
        var libraries = output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(l => l.Split(' ')[0])
            .Where(l => l is not "linux-vdso.so.1" && !l.Contains("ld-linux", StringComparison.Ordinal))
            .ToList();
        Assert.That(libraries, Is.EquivalentTo(new[] { "libc.so.6", "libm.so.6" }), output);

        var start = new ProcessStartInfo(exe) { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var arg in new[] { "info", $"nbd://127.0.0.1:{Loopback.FreePort()}/" })
        {
            start.ArgumentList.Add(arg);
        }

        start.Environment.Remove("DOTNET_ROOT");
        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync(ct);
        await process.StandardOutput.ReadToEndAsync(ct);
        await process.WaitForExitAsync(ct);
        Assert.That(process.ExitCode, Is.EqualTo(1));
        AssertOneLine(await stderr, "cannot connect to 127.0.0.1:");
    }

    private static void AssertOneLine(string stderr, string contains)
    {
        var lines = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.That(lines, Has.Length.EqualTo(1), stderr);
        Assert.That(lines[0], Does.StartWith("swapnbd-client: ").And.Contain(contains));
        Assert.That(stderr, Does.Not.Contain("   at "));
    }

    private static async Task<(int Code, string Stdout, string Stderr)> RunAsync(CancellationToken ct, params string[] args)
    {
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();
        var code = await ClientCli.RunAsync(args, stdout, stderr, ct);
        return (code, stdout.ToString(), stderr.ToString());
    }
}
