using System.Diagnostics;
using NUnit.Framework;
using Swap.Nbd.Client;
using Swap.Nbd.Tests.Support;
using Swap.Slabs.Mapping;

namespace Swap.Nbd.Tests.Prefetch;

/// <summary>
/// The prefetcher in the whole slab path (NBD server → SwapDevice → daemons + backup file): streams that it predicts
/// are served from its cache; writes, TRIMs and WRITE_ZEROES to pages whose prefetch is in flight or cached, a donor
/// evicting everything and a donor killed mid-run never make a READ see an old page (a reference model checks every
/// byte); the donor byte budget holds.
/// </summary>
[Category(Tier.Integration)]
public sealed class PrefetchSystemTests
{
    private const int Size = 16 << 20;
    private const int Page = 4096;

    /// <summary>The prefetcher on, with the size the README suggests (it is off by default).</summary>
    private static SwapDeviceOptions On(SwapDeviceOptions options) => options with { PrefetchCacheSize = 16 << 20 };

    [Test]
    [CancelAfter(240_000)]
    public async Task Streams_with_writes_trims_zeroes_an_eviction_and_a_lost_donor_never_read_an_old_page(CancellationToken ct)
    {
        await using var cluster = await SlabCluster.StartAsync(3, Size, configureDevice: On);
        await using var pool = await NbdClientPool.ConnectAsync(cluster.Uri, 2, new NbdClientOptions(), ct);
        var model = new byte[Size];
        var known = new bool[Size / Page];
        var rng = new Random(17);
        rng.NextBytes(model);
        for (var offset = 0; offset < Size; offset += 1 << 20)
        {
            await pool.WriteAsync(offset, model.AsMemory(offset, 1 << 20), ct: ct);
        }

        Array.Fill(known, true);
        await cluster.WaitSettledAsync(ct);

        var mismatches = 0;
        var reads = 0;
        var buffer = new byte[64 << 10];
        async Task ReadAndCheckAsync(long page, int pages)
        {
            var destination = buffer.AsMemory(0, pages * Page);
            await pool.ReadAsync(page * Page, destination, ct);
            reads++;
            for (var i = 0; i < pages; i++)
            {
                if (known[page + i] && !destination.Span.Slice(i * Page, Page).SequenceEqual(model.AsSpan((int)((page + i) * Page), Page)))
                {
                    mismatches++;
                }
            }
        }

        // A change a few pages ahead of the stream's cursor: its prefetch is in flight or cached right now.
        async Task ChangeAsync(long page)
        {
            var offset = (int)(page * Page);
            switch (rng.Next(4))
            {
                case 0:
                    await pool.TrimAsync(offset, Page, ct: ct);
                    known[page] = false;
                    break;
                case 1:
                    await pool.WriteZeroesAsync(offset, Page, ct: ct);
                    model.AsSpan(offset, Page).Clear();
                    known[page] = true;
                    break;
                default:
                    rng.NextBytes(model.AsSpan(offset, Page));
                    await pool.WriteAsync(offset, model.AsMemory(offset, Page), ct: ct);
                    known[page] = true;
                    break;
            }
        }

        const int Rounds = 36;
        var pagesTotal = Size / Page;
        for (var round = 0; round < Rounds; round++)
        {
            if (round == 12)
            {
                // A donor evicts every slab it holds: their cached pages are dropped, the slabs move.
                var evicting = await cluster.VictimAsync(ct);
                cluster.Daemons[evicting].Memory.Available = 0;
            }
            else if (round == 24)
            {
                // A donor is lost mid-stream.
                var stats = cluster.Device.GetStats();
                var lost = stats.Daemons.ToList().FindIndex(d => d.Up && d.Slabs > 0);
                if (lost >= 0)
                {
                    await cluster.Daemons[lost].KillAsync();
                }
            }

            var pattern = round % 5;
            var length = pattern == 3 ? 8 : 1; // 32 KiB reads: a readahead cluster's stream
            var stride = pattern switch { 0 => 1, 1 => -1, 2 => 3, 3 => 8, _ => 0 };
            var steps = 48;
            var start = stride >= 0 ? rng.Next(0, pagesTotal - (Math.Max(stride, 1) * steps) - 8) : rng.Next(steps + 8, pagesTotal - 8);
            for (var step = 0; step < steps; step++)
            {
                var page = stride == 0 ? rng.Next(0, pagesTotal - length) : start + ((long)step * stride);
                await ReadAndCheckAsync(page, length);
                if (stride != 0 && step % 5 == 2)
                {
                    await ChangeAsync(page + (2 * stride) + rng.Next(0, length));
                }
            }
        }

        // Everything once more, in big reads (no trend at 64 KiB steps across the changes matters here).
        for (long page = 0; page < pagesTotal; page += 16)
        {
            await ReadAndCheckAsync(page, 16);
        }

        var final = cluster.Device.GetStats();
        TestContext.Out.WriteLine($"reads {reads}, prefetch hits {final.PrefetchHits}, misses {final.PrefetchMisses}, issued {final.PrefetchIssued}, wasted {final.PrefetchWasted}, accuracy {final.PrefetchAccuracy:P0}");
        Assert.That(mismatches, Is.Zero);
        Assert.That(final.PrefetchHits, Is.GreaterThan(100), "the streams were served from the cache");
        Assert.That(final.PrefetchWasted, Is.GreaterThan(0), "writes ahead of the cursor invalidated prefetched pages");
        Assert.That(cluster.Device.Prefetcher!.Cache.InFlight, Is.LessThanOrEqualTo(cluster.Device.Prefetcher.MaxInFlight));
    }

    [Test]
    [CancelAfter(120_000)]
    public async Task The_donor_byte_budget_and_the_cache_bound_hold(CancellationToken ct)
    {
        const long Rate = 1 << 20;
        await using var cluster = await SlabCluster.StartAsync(2, Size,
            configureDevice: o => o with { PrefetchRate = Rate, PrefetchCacheSize = 64 << 10 });
        await using var pool = await NbdClientPool.ConnectAsync(cluster.Uri, 1, new NbdClientOptions(), ct);
        var data = new byte[Size];
        new Random(3).NextBytes(data);
        for (var offset = 0; offset < Size; offset += 1 << 20)
        {
            await pool.WriteAsync(offset, data.AsMemory(offset, 1 << 20), ct: ct);
        }

        await cluster.WaitSettledAsync(ct);
        var prefetcher = cluster.Device.Prefetcher!;
        var page = new byte[Page];
        var started = Stopwatch.GetTimestamp();
        var mismatches = 0;
        var maxCached = 0;
        for (var offset = 0; offset < 8 << 20; offset += Page)
        {
            await pool.ReadAsync(offset, page, ct);
            mismatches += page.AsSpan().SequenceEqual(data.AsSpan(offset, Page)) ? 0 : 1;
            maxCached = Math.Max(maxCached, prefetcher.Cache.Count);
        }

        var elapsed = Stopwatch.GetElapsedTime(started);
        var stats = cluster.Device.GetStats();
        TestContext.Out.WriteLine($"{elapsed.TotalSeconds:0.00} s, issued {stats.PrefetchIssued} pages, hits {stats.PrefetchHits}, budget stops {prefetcher.BudgetStops}, most cached {maxCached}");
        Assert.That(mismatches, Is.Zero);
        Assert.That(stats.PrefetchHits, Is.GreaterThan(0));
        // The bucket starts with 256 KiB and refills at Rate: more is never asked of the donors.
        Assert.That(stats.PrefetchIssued * Page, Is.LessThanOrEqualTo((256 << 10) + (long)(Rate * elapsed.TotalSeconds) + Page));
        Assert.That(prefetcher.BudgetStops, Is.GreaterThan(0), "the budget, not the stream, ended prefetching");
        Assert.That(maxCached, Is.LessThanOrEqualTo(16), "64 KiB of cache: 16 pages");
    }

    [Test]
    [CancelAfter(120_000)]
    public async Task Random_reads_prefetch_nothing_and_it_is_off_by_default(CancellationToken ct)
    {
        await using var cluster = await SlabCluster.StartAsync(2, Size, configureDevice: On);
        await using var pool = await NbdClientPool.ConnectAsync(cluster.Uri, 1, new NbdClientOptions(), ct);
        await pool.WriteAsync(0, new byte[Size], ct: ct);
        await cluster.WaitSettledAsync(ct);
        var rng = new Random(9);
        var page = new byte[Page];
        for (var i = 0; i < 2000; i++)
        {
            await pool.ReadAsync((long)rng.Next(0, Size / Page) * Page, page, ct);
        }

        var stats = cluster.Device.GetStats();
        Assert.That(stats.PrefetchIssued, Is.LessThan(20), "a random stream has no majority delta (a chance run of three may)");
        Assert.That(stats.PrefetchMisses, Is.EqualTo(2000));

        await using var off = await SlabCluster.StartAsync(1, Size);
        Assert.That(off.Device.Prefetcher, Is.Null, "off unless --prefetch-cache asks for it");
    }
}
