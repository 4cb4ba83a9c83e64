using System.Net;
using System.Net.Sockets;
using NUnit.Framework;
using Swap.Nbd.Server.Hosting;
using Swap.Nbd.Tests.Support;
using Swap.BlockDevices;
using Swap.Donor;

namespace Swap.Nbd.Tests.Server;

/// <summary>
/// A port someone listens on is refused to a second server or daemon: .NET's ReuseAddress option had shared it
/// through SO_REUSEPORT, and a kernel nbd device's connections could split between two servers.
/// </summary>
[Category(Tier.Integration)]
public sealed class ListenPortTests
{
    [Test, CancelAfter(30_000)]
    public async Task A_second_NBD_server_on_a_port_in_use_fails_to_start(CancellationToken ct)
    {
        await using var first = TestServer.Start();
        using var device = new SparseMemoryDevice(1 << 20);
        await using var second = new NbdServer(new NbdServerOptions { Listen = $"127.0.0.1:{first.Port}" }, device);

        var ex = Assert.Throws<SocketException>(second.Start);
        Assert.That(ex!.SocketErrorCode, Is.EqualTo(SocketError.AddressAlreadyInUse));
        using var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, first.Port, ct);
        Assert.That(() => first.Server.AcceptedConnections, Is.EqualTo(1).After(5000, 20), "the first server still gets every connection");
    }

    [Test, CancelAfter(30_000)]
    public async Task A_second_donor_daemon_on_a_port_in_use_fails_to_start(CancellationToken ct)
    {
        await using var first = await TestDaemon.StartAsync(process: false);
        var second = new DonorDaemon(new DonorOptions { Listen = first.Name, AuthKeyFile = TestKeys.File });

        var ex = Assert.Throws<SocketException>(second.Start);
        Assert.That(ex!.SocketErrorCode, Is.EqualTo(SocketError.AddressAlreadyInUse));
        await second.StopAsync();
    }
}
