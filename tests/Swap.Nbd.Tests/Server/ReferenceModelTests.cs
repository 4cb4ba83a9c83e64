using NUnit.Framework;
using Swap.Nbd.Client;
using Swap.Nbd.Tests.Support;

namespace Swap.Nbd.Tests.Server;

/// <summary>
/// Random READ/WRITE/TRIM/WRITE_ZEROES/FLUSH/CACHE mixes, many in flight over several connections, checked
/// byte for byte against a model of what the export must contain.
/// </summary>
[Category(Tier.Integration)]
public sealed class ReferenceModelTests
{
    private const int Size = 32 << 20;

    [TestCase(false, 1, false)]
    [TestCase(true, 1, false)]
    [TestCase(false, 3, false)]
    [TestCase(true, 4, true)]
    [CancelAfter(120_000)]
    public async Task Random_mix_matches_the_model(bool structured, int connections, bool unix, CancellationToken ct)
    {
        await using var server = TestServer.Start(Size);
        var uri = NbdUri.Parse(unix ? server.UnixUri : server.TcpUri);
        await using var pool = await NbdClientPool.ConnectAsync(uri, connections, new NbdClientOptions { StructuredReplies = structured }, ct);

        var workload = new ReferenceWorkload(Size, 1234 + connections);
        await workload.RunAsync(pool, 40, ct);
        await workload.VerifyAllAsync(pool, ct);

        Assert.That(workload.Mismatches, Is.Zero);
        Assert.That(workload.Operations, Is.EqualTo(40 * 64));
        Assert.That(server.Server.AcceptedConnections, Is.EqualTo(connections));
    }
}
