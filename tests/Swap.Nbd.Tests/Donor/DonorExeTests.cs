using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using NUnit.Framework;
using Swap.Nbd.Tests.Support;
using Swap.Daemon.Protocol;

namespace Swap.Nbd.Tests.Donor;

/// <summary>The published out/swapnbd-daemon (scripts/build.sh) as an operator runs it.</summary>
[Category(Tier.Integration)]
public sealed class DonorExeTests
{
    private static string Exe => Repo.Path("out", "swapnbd-daemon");

    [Test, CancelAfter(60_000)]
    public async Task Sigterm_stops_the_daemon_with_exit_code_0(CancellationToken ct)
    {
        Assert.That(File.Exists(Exe), Is.True, "run scripts/build.sh first (scripts/test.sh does)");
        var port = Loopback.FreePort();
        using var process = Process.Start(new ProcessStartInfo(Exe)
        {
            ArgumentList = { "--listen", $"127.0.0.1:{port}", "--max-memory", "64MiB", "--headroom", "0", "--grace-period", "30s", "--auth-key-file", TestKeys.File },
            RedirectStandardError = true,
            RedirectStandardOutput = true,
        })!;
        try
        {
            var endPoint = new IPEndPoint(IPAddress.Loopback, port);
            DonorTestClient? client = null;
            for (var i = 0; i < 200 && client is null; i++)
            {
                try
                {
                    client = await DonorTestClient.ConnectAsync(endPoint, ct);
                }
                catch (SocketException)
                {
                    await Task.Delay(50, ct);
                }
            }

            Assert.That(client, Is.Not.Null, "daemon did not start listening");
            await using (client)
            {
                Assert.That(await client!.HelloAsync(7, ct), Is.EqualTo(DaemonStatus.Ok));
                var slab = await client.AllocOkAsync(1 << 20, ct);
                Assert.That(await client.WriteAsync(slab, 0, new byte[4096], ct), Is.EqualTo(DaemonStatus.Ok));
                var (exit, _) = await Repo.RunAsync("kill", ["-TERM", process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)], TimeSpan.FromSeconds(5), ct);
                Assert.That(exit, Is.Zero);
                await process.WaitForExitAsync(ct).WaitAsync(TimeSpan.FromSeconds(20), ct);
            }

            Assert.That(process.ExitCode, Is.Zero, await process.StandardError.ReadToEndAsync(ct));
        }
        finally
        {
            if (!process.HasExited)
            {
                process.Kill();
            }
        }
    }

    [Test, CancelAfter(30_000)]
    public async Task Configuration_errors_exit_2_naming_every_key(CancellationToken ct)
    {
        var (exit, output) = await Repo.RunAsync(Exe, ["--max-memory", "lots", "--max-clients", "0", "--bogus", "1"], TimeSpan.FromSeconds(20), ct);
        Assert.That(exit, Is.EqualTo(2));
        Assert.That(output, Does.Contain("MaxMemory: 'lots' is not a size"));
        Assert.That(output, Does.Contain("MaxClients: must be between"));
        Assert.That(output, Does.Contain("'--bogus' is not known"));
        Assert.That(output, Does.Not.Contain("   at "), "no stack trace");
    }

    [Test, CancelAfter(30_000)]
    public async Task Help_lists_the_options(CancellationToken ct)
    {
        var (exit, output) = await Repo.RunAsync(Exe, ["--help"], TimeSpan.FromSeconds(20), ct);
        Assert.That(exit, Is.Zero);
        foreach (var option in Swap.Donor.Hosting.DaemonSettings.Switches.Keys)
        {
            Assert.That(output, Does.Contain(option));
        }
    }

    [Test, CancelAfter(30_000)]
    public async Task An_address_in_use_exits_3(CancellationToken ct)
    {
        using var taken = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        taken.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        taken.Listen();
        var (exit, output) = await Repo.RunAsync(Exe, ["--listen", taken.LocalEndPoint!.ToString()!, "--auth-key-file", TestKeys.File], TimeSpan.FromSeconds(20), ct);
        Assert.That(exit, Is.EqualTo(3), output);
        Assert.That(output, Does.Contain("cannot start"));
    }
}
