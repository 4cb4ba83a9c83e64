using System.Net.Sockets;
using NUnit.Framework;
using Swap.Nbd.Tests.Support;

namespace Swap.Nbd.Tests.Server;

[Category(Tier.Integration)]
public sealed class SmokeTests
{
    [Test, CancelAfter(10_000)]
    public async Task Server_sends_fixed_newstyle_greeting(CancellationToken ct)
    {
        await using var server = TestServer.Start();
        using var client = new TcpClient();
        await client.ConnectAsync("127.0.0.1", server.Port, ct);
        var greeting = new byte[18];
        await client.GetStream().ReadExactlyAsync(greeting, ct);
        Assert.That(Convert.ToHexString(greeting), Is.EqualTo("4E42444D41474943" + "49484156454F5054" + "0003"));
    }
}
