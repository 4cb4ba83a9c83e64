using System.Diagnostics;
using NUnit.Framework;
using Swap.Nbd.Tests.Support;

namespace Swap.Nbd.Tests.Server;

[Category(Tier.Integration)]
public sealed class ShutdownTests
{
    [Test, CancelAfter(60_000)]
    public async Task Sigterm_stops_the_server_process_with_exit_code_0(CancellationToken ct)
    {
        var exe = Repo.Path("out", "swapnbd-server");
        Assert.That(File.Exists(exe), Is.True, "run scripts/build.sh first (scripts/test.sh does)");
        var dir = Directory.CreateTempSubdirectory("swapnbd-sigterm");
        var socket = Path.Combine(dir.FullName, "nbd.sock");
        using var process = Process.Start(new ProcessStartInfo(exe)
        {
            ArgumentList = { "--size", "64MiB", "--listen", "", "--socket", socket },
            RedirectStandardError = true,
            RedirectStandardOutput = true,
        })!;
        try
        {
            for (var i = 0; i < 100 && !File.Exists(socket); i++)
            {
                await Task.Delay(100, ct);
            }

            Assert.That(File.Exists(socket), Is.True, "server did not create its socket");
            await using (var connection = await Swap.Nbd.Client.NbdClientConnection.ConnectAsync($"nbd+unix:///?socket={socket}", ct: ct))
            {
                await connection.WriteAsync(0, new byte[4096], ct: ct);
                var (exit, _) = await Repo.RunAsync("kill", ["-TERM", process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)], TimeSpan.FromSeconds(5), ct);
                Assert.That(exit, Is.Zero);
                await process.WaitForExitAsync(ct).WaitAsync(TimeSpan.FromSeconds(20), ct);
            }

            Assert.That(process.ExitCode, Is.Zero, await process.StandardError.ReadToEndAsync(ct));
            Assert.That(File.Exists(socket), Is.False, "the socket file is removed on exit");
        }
        finally
        {
            if (!process.HasExited)
            {
                process.Kill();
            }

            dir.Delete(recursive: true);
        }
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
