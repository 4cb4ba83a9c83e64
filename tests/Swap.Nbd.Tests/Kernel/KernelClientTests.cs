using NUnit.Framework;
using Swap.Nbd.Tests.Support;

namespace Swap.Nbd.Tests.Kernel;

/// <summary>
/// The real Linux nbd driver and Debian's nbd-client, in Debian's kernel under qemu, against the server on host
/// loopback (this host's kernel has no nbd module). See scripts/kernel/.
/// </summary>
[Category(Tier.Kernel)]
public sealed class KernelClientTests
{
    [Test, CancelAfter(360_000)]
    public async Task Kernel_nbd_client_with_two_connections_writes_and_reads_back_data(CancellationToken ct)
    {
        const long size = 256L << 20;
        await using var server = TestServer.Start(size);
        var log = Path.Combine(server.Directory, "console.log");
        var (exit, output) = await Repo.RunAsync(Repo.Path("scripts", "kernel", "run-guest.sh"),
            ["--port", server.Port.ToString(System.Globalization.CultureInfo.InvariantCulture),
             "--script", Repo.Path("scripts", "kernel", "guests", "rw-check.sh"),
             "--env", $"NBD_SIZE={size}", "--env", "NBD_CONNECTIONS=2", "--timeout", "300", "--log", log],
            TimeSpan.FromMinutes(5.5), ct);
        var console = File.Exists(log) ? await File.ReadAllTextAsync(log, ct) : output;
        TestContext.Out.WriteLine(console);

        Assert.That(exit, Is.Zero, "guest script failed:\n" + output);
        Assert.That(console, Does.Contain("RW-CHECK: verified 3 x 32 MiB"));
        Assert.That(console, Does.Contain("2 hw queue(s)"), "the kernel used both connections");
        Assert.That(console, Does.Contain("RW-CHECK: PASS"));
        Assert.That(console, Does.Not.Contain("I/O error"));
        Assert.That(server.Server.AcceptedConnections, Is.GreaterThanOrEqualTo(2), "nbd-client -C 2 opens two connections");
        Assert.That(server.Device.AllocatedBytes, Is.GreaterThanOrEqualTo(96L << 20), "the guest's 3 x 32 MiB landed in the server's memory");
    }
}
