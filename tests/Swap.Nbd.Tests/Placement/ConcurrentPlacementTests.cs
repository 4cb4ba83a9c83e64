using NUnit.Framework;
using Swap.Nbd.Client;
using Swap.Nbd.Tests.Support;

namespace Swap.Nbd.Tests.Placement;

/// <summary>
/// Slabs written at the same moment are placed one after another, each seeing the ones before it: power of two
/// choices over two equal daemons then alternates, so eight slabs written at once end up four and four. Placed all
/// at once, every placement heard the same free counts and broke the tie at random (a benchmark pre-fill of two
/// slabs put both on one daemon about half the time, which then did all the work).
/// </summary>
[Category(Tier.Integration)]
public sealed class ConcurrentPlacementTests
{
    private const int SlabSize = 1 << 20;
    private const int Slabs = 8;

    [Test]
    [CancelAfter(60_000)]
    public async Task Slabs_written_at_once_spread_evenly_over_equal_daemons(CancellationToken ct)
    {
        await using var cluster = await SlabCluster.StartAsync(2, (long)Slabs * SlabSize, SlabSize);
        await using var pool = await NbdClientPool.ConnectAsync(cluster.Uri, 4, new NbdClientOptions(), ct);
        var page = new byte[4096];
        Random.Shared.NextBytes(page);

        await Task.WhenAll(Enumerable.Range(0, Slabs).Select(slab => pool.WriteAsync((long)slab * SlabSize, page, fua: false, ct).AsTask()));
        await cluster.WaitSettledAsync(ct);

        var held = cluster.Device.GetStats().Daemons.Select(d => d.Slabs).ToArray();
        Assert.That(held, Is.EqualTo(new[] { Slabs / 2, Slabs / 2 }), "slabs per daemon");
    }
}
