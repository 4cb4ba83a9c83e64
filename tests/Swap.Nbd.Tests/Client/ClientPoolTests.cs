using NUnit.Framework;
using Swap.Nbd.Client;
using Swap.Nbd.Tests.Support;

namespace Swap.Nbd.Tests.Client;

[Category(Tier.Integration)]
public sealed class ClientPoolTests
{
    [Test, CancelAfter(30_000)]
    public async Task Requests_spread_over_connections_and_all_see_one_device(CancellationToken ct)
    {
        await using var server = TestServer.Start(16L << 20);
        await using var pool = await NbdClientPool.ConnectAsync(NbdUri.Parse(server.TcpUri), 4, ct: ct);
        Assert.That(pool.Connections, Has.Count.EqualTo(4));
        Assert.That(pool.Export.CanMultiConn, Is.True);

        var model = new byte[1 << 20];
        new Random(3).NextBytes(model);
        const int chunk = 4096;
        await Task.WhenAll(Enumerable.Range(0, model.Length / chunk)
            .Select(i => pool.WriteAsync(i * chunk, model.AsMemory(i * chunk, chunk), ct: ct).AsTask()));
        await pool.FlushAsync(ct);

        // Read each chunk through a different connection from the one that wrote it.
        var back = new byte[model.Length];
        await Task.WhenAll(Enumerable.Range(0, model.Length / chunk)
            .Select(i => pool.Connections[(i + 1) % 4].ReadAsync(i * chunk, back.AsMemory(i * chunk, chunk), ct).AsTask()));
        Assert.That(back, Is.EqualTo(model));

        var used = new HashSet<NbdClientConnection>();
        for (var i = 0; i < 8; i++)
        {
            used.Add(pool.Next());
        }

        Assert.That(used, Has.Count.EqualTo(4), "round-robin reaches every connection");
    }
}
